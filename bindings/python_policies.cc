#include "bindings/python_policies.h"

#include <mutex>
#include <unordered_set>
#include <vector>

#include "bindings/bindings.h"
#include "policies/error.h"
#include "policies/registry.h"

namespace twinfer::py_bindings {
namespace {

std::mutex g_deferred_mu;
bool g_deferring = false;              // guarded by g_deferred_mu
std::vector<std::string> g_deferred;  // guarded by g_deferred_mu

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

class HeldRouter final : public Router {
 public:
  explicit HeldRouter(Held<Router> held) : held_(std::move(held)) {}
  RouteDecision route(const Request& request, const ClusterView& view) override {
    py::gil_scoped_acquire gil;
    RouteDecision d = held_.call("route", [&] { return held_.impl->route(request, view); });
    // An index the driver would use out of bounds is an error of the policy, not a crash.
    if (d.worker >= static_cast<int>(view.size())) {
      throw Error(held_.where + ".route(): returned worker " + std::to_string(d.worker) + "; the cluster has " +
                  std::to_string(view.size()) + " workers");
    }
    if (d.rejected() && d.reason.empty()) d.reason = "rejected by router " + held_.registered;
    return d;
  }
  std::string name() const override {
    py::gil_scoped_acquire gil;
    return held_.name();
  }

 private:
  Held<Router> held_;
};

class HeldAdmission final : public Admission {
 public:
  explicit HeldAdmission(Held<Admission> held) : held_(std::move(held)) {}
  AdmissionDecision admit(const Request& request, const ClusterView& view) override {
    py::gil_scoped_acquire gil;
    AdmissionDecision d = held_.call("admit", [&] { return held_.impl->admit(request, view); });
    if (!d.admitted && d.reason.empty()) d.reason = "rejected by admission " + held_.registered;
    return d;
  }
  std::string name() const override {
    py::gil_scoped_acquire gil;
    return held_.name();
  }

 private:
  Held<Admission> held_;
};

class HeldBatcher final : public Batcher {
 public:
  explicit HeldBatcher(Held<Batcher> held) : held_(std::move(held)) {}
  BatchPlan next(const WorkerState& state, TimeUs now_us) override {
    if (!failed_.empty()) return end_everything(state, now_us);
    py::gil_scoped_acquire gil;
    BatchPlan plan;
    try {
      plan = held_.impl->next(state, now_us);
    } catch (py::error_already_set& e) {
      return failed(held_.where + ".next(): " + describe(e), state, now_us);
    } catch (const Error& e) {
      return failed(held_.where + ".next(): " + e.what(), state, now_us);
    }
    std::string bad = invalid_ids(plan, state);
    if (!bad.empty()) return failed(held_.where + ".next(): " + bad, state, now_us);
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
  // WorkerState asserts on ids that are not where a plan says; a Python plan is checked first.
  static std::string invalid_ids(const BatchPlan& plan, const WorkerState& state) {
    if (plan.entries.empty() && plan.preempt.empty() && plan.drop.empty()) return {};
    std::unordered_set<RequestId> waiting(state.waiting().begin(), state.waiting().end());
    std::unordered_set<RequestId> running(state.running().begin(), state.running().end());
    for (const BatchEntry& e : plan.entries) {
      if (!waiting.count(e.id) && !running.count(e.id)) {
        return "batch entry " + std::to_string(e.id) + " is not on this worker";
      }
      if (plan.kind == BatchKind::kIteration) {
        std::string bad = invalid_iteration_entry(e, state.get(e.id));
        if (!bad.empty()) return "batch entry " + std::to_string(e.id) + ": " + bad;
      }
    }
    for (RequestId id : plan.preempt) {
      if (!running.count(id)) return "preempted request " + std::to_string(id) + " is not running";
    }
    for (const BatchDrop& d : plan.drop) {
      if (!waiting.count(d.id)) return "dropped request " + std::to_string(d.id) + " is not waiting";
    }
    return {};
  }

  // The preconditions WorkerState asserts for an iteration's entry.
  static std::string invalid_iteration_entry(const BatchEntry& e, const Sequence& seq) {
    if (e.prefill_tokens < 0) return "negative prefill_tokens";
    if (e.prefill_tokens > 0 && e.decode) return "an entry either prefills or decodes";
    if (!e.decode && e.prefill_tokens == 0) return "neither prefills nor decodes";
    if (!e.decode && e.prefill_tokens > seq.prefill_remaining()) {
      return "prefill_tokens " + std::to_string(e.prefill_tokens) + " past the " +
             std::to_string(seq.prefill_remaining()) + " left to prefill";
    }
    if (e.decode && (seq.in_prefill() || seq.done())) return "decode of a sequence that is not decoding";
    return {};
  }

  // In the simulator the error propagates; in the embedded runtime (a worker thread) it is kept
  // for the run to raise, and this worker's requests end as dropped so that the run finishes.
  BatchPlan failed(const std::string& message, const WorkerState& state, TimeUs now_us) {
    if (!DeferredPolicyErrors::active()) throw Error(message);
    DeferredPolicyErrors::keep(message);
    failed_ = message;
    return end_everything(state, now_us);
  }

  // Drops every waiting sequence and preempts every running one; the preempted are dropped on the
  // next call, which wake_at_us asks for at once.
  BatchPlan end_everything(const WorkerState& state, TimeUs now_us) const {
    BatchPlan plan;
    for (RequestId id : state.waiting()) plan.drop.push_back({id, "batcher failed: " + failed_});
    plan.preempt = state.running();
    if (!plan.preempt.empty()) plan.wake_at_us = now_us;
    return plan;
  }

  Held<Batcher> held_;
  std::string failed_;  // the error, once next() failed
};

class HeldAutoscaler final : public Autoscaler {
 public:
  explicit HeldAutoscaler(Held<Autoscaler> held) : held_(std::move(held)) {}
  ScaleDecision decide(const PoolSample& sample) override {
    py::gil_scoped_acquire gil;
    ScaleDecision d = held_.call("decide", [&] { return held_.impl->decide(sample); });
    // The driver clamps to the pool's bounds; a negative count is a mistake of the policy.
    if (d.desired < 0) {
      throw Error(held_.where + ".decide(): returned " + std::to_string(d.desired) + " replicas; want >= 0");
    }
    if (d.reason.empty()) d.reason = "autoscaler " + held_.registered;
    return d;
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

DeferredPolicyErrors::DeferredPolicyErrors() {
  std::lock_guard<std::mutex> lock(g_deferred_mu);
  g_deferring = true;
  g_deferred.clear();
}

DeferredPolicyErrors::~DeferredPolicyErrors() {
  std::lock_guard<std::mutex> lock(g_deferred_mu);
  g_deferring = false;
}

void DeferredPolicyErrors::rethrow_first() const {
  std::lock_guard<std::mutex> lock(g_deferred_mu);
  if (!g_deferred.empty()) throw Error(g_deferred.front());
}

bool DeferredPolicyErrors::active() {
  std::lock_guard<std::mutex> lock(g_deferred_mu);
  return g_deferring;
}

void DeferredPolicyErrors::keep(const std::string& message) {
  std::lock_guard<std::mutex> lock(g_deferred_mu);
  g_deferred.push_back(message);
}

void add_python_router(const std::string& name, py::object factory) {
  add_python_policy<Router, HeldRouter>(router_registry(), name, std::move(factory), "twinfer.Router");
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
