// Python-defined policies: trampolines that let Python classes subclass Router, Admission,
// Batcher and Autoscaler, and the adapters the C++ registries hand out, which keep the Python object alive and
// turn a Python exception into twinfer::Error naming the policy.
#pragma once

#include <memory>
#include <string>

#include <pybind11/pybind11.h>

#include "policies/admission.h"
#include "policies/autoscaler.h"
#include "policies/batcher.h"
#include "policies/route_scorer.h"
#include "policies/router.h"
#include "policies/worker_state.h"

namespace twinfer::py_bindings {

namespace py = pybind11;

// Trampolines. Each call takes the GIL: C++ calls them with it released, from any thread.
class PyRouter : public Router {
 public:
  // A Python route() returns a worker index or a RouteDecision.
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override;
  // A Python view_use() returns a twinfer.ViewUse; without one, ViewUse.all.
  ViewUse view_use() const override;
};

class PyScorer : public RouteScorer {
 public:
  // A Python score() returns a sequence of numbers, one per candidate. `views` reach Python as a
  // list of the WorkerViews themselves (valid during the call only).
  std::vector<double> score(const Request& request, const std::vector<WorkerView>& views,
                            const std::vector<int>& candidates) override;
  std::string name() const override;
  ViewUse view_use() const override;
};

class PyAdmission : public Admission {
 public:
  // A Python admit() returns True/False or an AdmissionDecision.
  AdmissionDecision admit(const Request& request, const ClusterView& view) override;
  std::string name() const override;
  ViewUse view_use() const override;
};

class PyBatcher : public Batcher {
 public:
  // The WorkerState is passed by reference: valid during next() only.
  BatchPlan next(const WorkerState& state, TimeUs now_us) override;
  KvCapacity kv_capacity() const override;
  std::string name() const override;
};

class PyAutoscaler : public Autoscaler {
 public:
  // A Python decide() returns a replica count or a ScaleDecision.
  ScaleDecision decide(const PoolSample& sample) override;
  std::string name() const override;
};

// Adds a Python factory (a callable taking the parameters dict and returning an instance of a
// twinfer.Router / Scorer / Admission / Batcher / Autoscaler subclass) to the C++ registry under `name`.
void add_python_router(const std::string& name, py::object factory);
void add_python_scorer(const std::string& name, py::object factory);
void add_python_admission(const std::string& name, py::object factory);
void add_python_batcher(const std::string& name, py::object factory);
void add_python_autoscaler(const std::string& name, py::object factory);

}  // namespace twinfer::py_bindings
