// Python subclasses of the policy interfaces, their registration by name, and the registries.
#include <string>

#include <pybind11/stl.h>

#include "bindings/bindings.h"
#include "bindings/python_policies.h"
#include "core/error.h"
#include "policies/registry.h"

namespace twinfer::py_bindings {
namespace {

std::string repr_of(const py::handle& obj) { return py::repr(obj); }

py::function override_or_error(const py::function& f, const char* what) {
  if (!f) throw Error(std::string("the Python class does not define ") + what);
  return f;
}

}  // namespace

RouteDecision PyRouter::route(const Request& request, const ClusterView& view) {
  py::gil_scoped_acquire gil;
  py::function f = override_or_error(py::get_override(static_cast<const Router*>(this), "route"),
                                     "route(request, view)");
  py::object result = f(request, view);
  if (py::isinstance<RouteDecision>(result)) return result.cast<RouteDecision>();
  if (py::isinstance<py::int_>(result) && !py::isinstance<py::bool_>(result)) {
    return RouteDecision::to(result.cast<int>());
  }
  throw Error("route() must return a worker index or a twinfer.RouteDecision, got " + repr_of(result));
}

std::string PyRouter::name() const {
  py::gil_scoped_acquire gil;
  PYBIND11_OVERRIDE_PURE(std::string, Router, name, );
}

ViewUse PyRouter::view_use() const {
  py::gil_scoped_acquire gil;
  PYBIND11_OVERRIDE(ViewUse, Router, view_use, );
}

std::vector<double> PyScorer::score(const Request& request, const std::vector<WorkerView>& views,
                                    const std::vector<int>& candidates) {
  py::gil_scoped_acquire gil;
  py::function f = override_or_error(py::get_override(static_cast<const RouteScorer*>(this), "score"),
                                     "score(request, views, candidates)");
  py::list seen(views.size());
  for (std::size_t i = 0; i < views.size(); ++i) seen[i] = py::cast(&views[i], py::return_value_policy::reference);
  py::object result = f(request, seen, candidates);
  try {
    return result.cast<std::vector<double>>();
  } catch (const py::cast_error&) {
    throw Error("score() must return a sequence of numbers, one per candidate, got " + repr_of(result));
  }
}

std::string PyScorer::name() const {
  py::gil_scoped_acquire gil;
  PYBIND11_OVERRIDE_PURE(std::string, RouteScorer, name, );
}

ViewUse PyScorer::view_use() const {
  py::gil_scoped_acquire gil;
  PYBIND11_OVERRIDE(ViewUse, RouteScorer, view_use, );
}

AdmissionDecision PyAdmission::admit(const Request& request, const ClusterView& view) {
  py::gil_scoped_acquire gil;
  py::function f = override_or_error(py::get_override(static_cast<const Admission*>(this), "admit"),
                                     "admit(request, view)");
  py::object result = f(request, view);
  if (py::isinstance<AdmissionDecision>(result)) return result.cast<AdmissionDecision>();
  if (py::isinstance<py::bool_>(result)) {
    return result.cast<bool>() ? AdmissionDecision::admit() : AdmissionDecision::reject("");
  }
  throw Error("admit() must return True/False or a twinfer.AdmissionDecision, got " + repr_of(result));
}

std::string PyAdmission::name() const {
  py::gil_scoped_acquire gil;
  PYBIND11_OVERRIDE_PURE(std::string, Admission, name, );
}

ViewUse PyAdmission::view_use() const {
  py::gil_scoped_acquire gil;
  PYBIND11_OVERRIDE(ViewUse, Admission, view_use, );
}

BatchPlan PyBatcher::next(const WorkerState& state, TimeUs now_us) {
  py::gil_scoped_acquire gil;
  py::function f = override_or_error(py::get_override(static_cast<const Batcher*>(this), "next"),
                                     "next(state, now_us)");
  // By reference: copying the worker's whole state on every step would be wasted.
  py::object result = f(py::cast(&state, py::return_value_policy::reference), now_us);
  if (py::isinstance<BatchPlan>(result)) return result.cast<BatchPlan>();
  throw Error("next() must return a twinfer.BatchPlan, got " + repr_of(result));
}

KvCapacity PyBatcher::kv_capacity() const {
  py::gil_scoped_acquire gil;
  PYBIND11_OVERRIDE(KvCapacity, Batcher, kv_capacity, );
}

std::string PyBatcher::name() const {
  py::gil_scoped_acquire gil;
  PYBIND11_OVERRIDE_PURE(std::string, Batcher, name, );
}

ScaleDecision PyAutoscaler::decide(const PoolSample& sample) {
  py::gil_scoped_acquire gil;
  py::function f = override_or_error(py::get_override(static_cast<const Autoscaler*>(this), "decide"),
                                     "decide(sample)");
  // By reference: the sample lives for the call, like a view.
  py::object result = f(py::cast(&sample, py::return_value_policy::reference));
  if (py::isinstance<ScaleDecision>(result)) return result.cast<ScaleDecision>();
  if (py::isinstance<py::int_>(result) && !py::isinstance<py::bool_>(result)) {
    return ScaleDecision{result.cast<int>(), ""};
  }
  throw Error("decide() must return a replica count or a twinfer.ScaleDecision, got " + repr_of(result));
}

std::string PyAutoscaler::name() const {
  py::gil_scoped_acquire gil;
  PYBIND11_OVERRIDE_PURE(std::string, Autoscaler, name, );
}

void bind_policies(py::module_& m) {
  py::enum_<ViewUse>(m, "ViewUse",
                     "What of the workers' views a policy reads. membership: health, lifecycle and models; "
                     "queues: also waiting, running, outstanding work and latency; all: also KV blocks and "
                     "utilization. A router or admission that declares less than `all` lets the simulator run "
                     "workers ahead of its decisions (faster, the same results); one that reads more than it "
                     "declares sees stale values.")
      .value("membership", ViewUse::kMembership)
      .value("queues", ViewUse::kQueues)
      .value("all", ViewUse::kAll);
  py::class_<Router, PyRouter>(m, "Router",
                               "Subclass and define route(request, view) -> worker index or RouteDecision, "
                               "and optionally name() and view_use() -> ViewUse (default ViewUse.all).")
      .def(py::init<>())
      .def("view_use", &Router::view_use);
  py::class_<RouteScorer, PyScorer>(m, "Scorer",
                                    "A scorer for the scored router: subclass and define score(request, views, "
                                    "candidates) -> one number in [0, 1] per candidate (worker indices into views, "
                                    "the router's views), higher is better; optionally name() and view_use() -> "
                                    "ViewUse (default ViewUse.all). The router adds weight x score to the other "
                                    "scorers' before its picker chooses.")
      .def(py::init<>())
      .def("view_use", &RouteScorer::view_use);
  py::class_<Admission, PyAdmission>(m, "Admission",
                                     "Subclass and define admit(request, view) -> bool or AdmissionDecision, "
                                     "and optionally name() and view_use() -> ViewUse (default ViewUse.all).")
      .def(py::init<>())
      .def("view_use", &Admission::view_use);
  py::class_<Batcher, PyBatcher>(m, "Batcher",
                                 "Subclass and define next(state, now_us) -> BatchPlan, optionally "
                                 "kv_capacity() -> KvCapacity and name().")
      .def(py::init<>());
  py::class_<Autoscaler, PyAutoscaler>(m, "Autoscaler",
                                       "Subclass and define decide(sample: PoolSample) -> replica count or "
                                       "ScaleDecision, and optionally name(). One instance per pool, called "
                                       "once per autoscaling.interval_s in time order; it may keep state.")
      .def(py::init<>());

  m.def("register_router", &add_python_router, py::arg("name"), py::arg("factory"),
        "Makes `name` usable as policies.router; factory(params: dict) returns a twinfer.Router.");
  m.def("register_scorer", &add_python_scorer, py::arg("name"), py::arg("factory"),
        "Makes `name` usable in the scored router's scorers ({\"name\": name, \"weight\": w, params...}); "
        "factory(params: dict) returns a twinfer.Scorer.");
  m.def("register_admission", &add_python_admission, py::arg("name"), py::arg("factory"),
        "Makes `name` usable as policies.admission; factory(params: dict) returns a twinfer.Admission.");
  m.def("register_batcher", &add_python_batcher, py::arg("name"), py::arg("factory"),
        "Makes `name` usable as policies.batcher; factory(params: dict) returns a twinfer.Batcher.");
  m.def("register_autoscaler", &add_python_autoscaler, py::arg("name"), py::arg("factory"),
        "Makes `name` usable as autoscaling.autoscaler; factory(params: dict) returns a twinfer.Autoscaler.");
  m.def("policy_names", [] {
    py::dict names;
    names["routers"] = router_registry().names();
    names["scorers"] = route_scorer_registry().names();
    names["batchers"] = batcher_registry().names();
    names["admissions"] = admission_registry().names();
    names["cost_models"] = cost_model_registry().names();
    names["autoscalers"] = autoscaler_registry().names();
    names["traffic_splits"] = traffic_split_registry().names();
    return names;
  });
}

}  // namespace twinfer::py_bindings
