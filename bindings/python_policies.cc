#include "bindings/python_policies.h"

#include <vector>

#include "bindings/bindings.h"
#include "core/error.h"
#include "policies/registry.h"

namespace twinfer::py_bindings {
namespace {

// The simulator's child leaves with _exit(), which would lose what a policy printed: its Python
// streams are flushed whenever a policy is let go (at the latest, when the run ends).
void flush_python_streams() {
  for (const char* stream : {"stdout", "stderr"}) {
    try {
      py::module_::import("sys").attr(stream).attr("flush")();
    } catch (py::error_already_set&) {
    }
  }
}

// A Python object the C++ side owns; dropped with the GIL held, from whatever thread.
std::shared_ptr<py::object> hold(py::object obj) {
  return std::shared_ptr<py::object>(new py::object(std::move(obj)), [](py::object* p) {
    py::gil_scoped_acquire gil;
    delete p;
    flush_python_streams();
  });
}

// The instance a Python factory made, the C++ base inside it, and the names for messages.
template <class T>
struct Held {
  std::shared_ptr<py::object> object;
  T* impl = nullptr;
  std::string where;       // config key path and policy name, e.g. "policies.router (mine)"
  std::string registered;  // the name it was registered under
  bool defines_name = false;

  std::string name() const { return defines_name ? impl->name() : registered; }
  [[noreturn]] void fail(const char* method, py::error_already_set& e) const {
    throw Error(where + "." + method + "(): " + describe(e));
  }
  [[noreturn]] void fail(const char* method, const Error& e) const {
    throw Error(where + "." + method + "(): " + e.what());
  }
  // f() (a call into the Python object), with its errors named after the policy and `method`.
  // REQUIRES: the GIL.
  template <class F>
  auto call(const char* method, F&& f) const -> decltype(f()) {
    try {
      return f();
    } catch (py::error_already_set& e) {
      fail(method, e);
    } catch (const Error& e) {
      fail(method, e);
    }
  }
};

// What a Python policy's view_use() returned, checked.
template <class T>
ViewUse view_use_of(const T& impl) {
  try {
    return impl.view_use();
  } catch (const py::cast_error&) {
    throw Error("must return a twinfer.ViewUse (ViewUse.membership, ViewUse.queues or ViewUse.all)");
  }
}

// The adapters only name a Python policy's errors after its config key. What the policies return is
// checked where it is used, as for C++ policies: route_checked() and admit_request() (a worker out
// of range, a refusal without a reason), ElasticCluster::decide() (a negative replica count),
// WorkerState::plan_error() (a plan the worker cannot carry out, checked here because C++
// batchers are trusted to keep begin()'s preconditions and Python ones are not).
// The name() and view_use() of an adapter whose policy reads the workers' views (a router, a
// scorer, an admission).
template <class T>
class HeldViewReader : public T {
 public:
  explicit HeldViewReader(Held<T> held) : held_(std::move(held)) {}
  std::string name() const override {
    py::gil_scoped_acquire gil;
    return held_.name();
  }
  ViewUse view_use() const override {
    py::gil_scoped_acquire gil;
    return held_.call("view_use", [&] { return view_use_of(*held_.impl); });
  }

 protected:
  Held<T> held_;
};

class HeldRouter final : public HeldViewReader<Router> {
 public:
  using HeldViewReader::HeldViewReader;
  RouteDecision route(const Request& request, const ClusterView& view) override {
    py::gil_scoped_acquire gil;
    return held_.call("route", [&] { return held_.impl->route(request, view); });
  }
};

class HeldScorer final : public HeldViewReader<RouteScorer> {
 public:
  using HeldViewReader::HeldViewReader;
  std::vector<double> score(const Request& request, const std::vector<WorkerView>& views,
                            const std::vector<int>& candidates) override {
    py::gil_scoped_acquire gil;
    return held_.call("score", [&] { return held_.impl->score(request, views, candidates); });
  }
};

class HeldAdmission final : public HeldViewReader<Admission> {
 public:
  using HeldViewReader::HeldViewReader;
  AdmissionDecision admit(const Request& request, const ClusterView& view) override {
    py::gil_scoped_acquire gil;
    return held_.call("admit", [&] { return held_.impl->admit(request, view); });
  }
};

// An exception (or a plan the worker cannot carry out) is an error of the run: the simulator
// stops with it; in the embedded runtime the worker ends its requests dropped and the run raises
// it once it returns (WorkerCallbacks::on_policy_error).
class HeldBatcher final : public Batcher {
 public:
  explicit HeldBatcher(Held<Batcher> held) : held_(std::move(held)) {}
  BatchPlan next(const WorkerState& state, TimeUs now_us) override {
    py::gil_scoped_acquire gil;
    BatchPlan plan = held_.call("next", [&] { return held_.impl->next(state, now_us); });
    const std::string bad = state.plan_error(plan);
    if (!bad.empty()) throw Error(held_.where + ".next(): " + bad);
    return plan;
  }
  KvCapacity kv_capacity() const override {
    py::gil_scoped_acquire gil;
    return held_.call("kv_capacity", [&] { return held_.impl->kv_capacity(); });
  }
  std::string name() const override {
    py::gil_scoped_acquire gil;
    return held_.name();
  }

 private:
  Held<Batcher> held_;
};

class HeldAutoscaler final : public Autoscaler {
 public:
  explicit HeldAutoscaler(Held<Autoscaler> held) : held_(std::move(held)) {}
  ScaleDecision decide(const PoolSample& sample) override {
    py::gil_scoped_acquire gil;
    return held_.call("decide", [&] { return held_.impl->decide(sample); });
  }
  std::string name() const override {
    py::gil_scoped_acquire gil;
    return held_.name();
  }

 private:
  Held<Autoscaler> held_;
};

template <class T, class Adapter>
void add_python_policy(PolicyRegistry<T>& registry, const std::string& name, py::object factory,
                       const char* base_class) {
  std::shared_ptr<py::object> make = hold(std::move(factory));
  registry.add(name, [make, name, base_class](JsonParams& params, const PolicyContext&) -> std::unique_ptr<T> {
    // Python reads its own parameters: every key is accepted here.
    for (const auto& item : params.object().items()) {
      nlohmann::json unused;
      params.get(item.key(), unused);
    }
    params.done();
    nlohmann::json args = params.object();
    args.erase("name");
    py::gil_scoped_acquire gil;
    Held<T> held;
    held.where = params.where();
    held.registered = name;
    try {
      py::object obj = (*make)(to_python(args));
      held.impl = obj.cast<T*>();
      held.defines_name = py::hasattr(obj, "name");
      held.object = hold(std::move(obj));
    } catch (py::error_already_set& e) {
      throw Error(params.where() + ": " + describe(e));
    } catch (const py::cast_error&) {
      throw Error(params.where() + ": the factory registered as '" + name + "' must return a " + base_class +
                  " instance");
    }
    return std::make_unique<Adapter>(std::move(held));
  });
}

}  // namespace

void add_python_router(const std::string& name, py::object factory) {
  add_python_policy<Router, HeldRouter>(router_registry(), name, std::move(factory), "twinfer.Router");
}
void add_python_scorer(const std::string& name, py::object factory) {
  add_python_policy<RouteScorer, HeldScorer>(route_scorer_registry(), name, std::move(factory), "twinfer.Scorer");
}
void add_python_admission(const std::string& name, py::object factory) {
  add_python_policy<Admission, HeldAdmission>(admission_registry(), name, std::move(factory), "twinfer.Admission");
}
void add_python_batcher(const std::string& name, py::object factory) {
  add_python_policy<Batcher, HeldBatcher>(batcher_registry(), name, std::move(factory), "twinfer.Batcher");
}
void add_python_autoscaler(const std::string& name, py::object factory) {
  add_python_policy<Autoscaler, HeldAutoscaler>(autoscaler_registry(), name, std::move(factory),
                                                "twinfer.Autoscaler");
}

}  // namespace twinfer::py_bindings
