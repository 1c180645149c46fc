// Runs: the simulator (in a forked child) and the embedded real runtime, with the GIL released.
#include <optional>
#include <string>

#include <Python.h>
#include <pybind11/stl.h>

#include "bindings/bindings.h"
#include "bindings/python_policies.h"
#include "runtime/engine/embedded_runtime.h"
#include "runtime/engine/profiler.h"
#include "serving/calibration.h"
#include "serving/client_log.h"
#include "sim/client_fit.h"
#include "sim/simulator.h"

namespace twinfer::py_bindings {
namespace {

// The options both simulate() and run() take from Python; `faults` is a scenario file ("" for none).
RunOptions run_options(const RunConfig& config, std::uint64_t seed, double rate_scale, const std::string& out_dir,
                       bool progress, const std::string& faults) {
  RunOptions options;
  options.seed = seed;
  options.rate_scale = rate_scale;
  options.out_dir = out_dir;
  options.progress = progress;
  if (!faults.empty()) options.faults = load_fault_scenario(faults, config.cluster);
  return options;
}

// The parent forks holding the GIL, as os.fork() does, so that the child's interpreter is in a
// known state (no other thread can own the lock there); the child reinitializes the interpreter's
// thread state, then releases the lock for Python policies (which take it in their trampolines).
// The parent releases the lock right after the fork while it waits for the child.
py::object simulate(const RunConfig& config, const Trace& trace, std::uint64_t seed, double rate_scale,
                    const std::string& out_dir, bool progress, const std::string& faults) {
  sim::SimRunOptions options{run_options(config, seed, rate_scale, out_dir, progress, faults)};
  std::optional<py::gil_scoped_release> waiting;
  options.in_parent = [&waiting] { waiting.emplace(); };
  options.in_child = [] {
    PyOS_AfterFork_Child();
    PyEval_SaveThread();
  };
  nlohmann::json summary = sim::simulate(config, trace, options);
  waiting.reset();
  return to_python(summary);
}

py::object run(const RunConfig& config, const Trace& trace, std::uint64_t seed, double rate_scale,
               const std::string& out_dir, const std::string& device, bool pin_threads, bool progress,
               const std::string& faults) {
  runtime::EmbeddedRunOptions options{run_options(config, seed, rate_scale, out_dir, progress, faults)};
  options.device = device;
  options.pin_threads = pin_threads;
  nlohmann::json summary;
  {
    py::gil_scoped_release released;
    summary = runtime::run_embedded(config, trace, options);
  }
  return to_python(summary);
}

py::object calibrate(const RunConfig& config, const std::vector<std::string>& step_logs, int holdout_every) {
  if (holdout_every < 0 || holdout_every == 1) throw Error("holdout_every: expected 0 or an integer >= 2");
  FitOptions options;
  options.holdout_every = holdout_every;
  nlohmann::json table;
  {
    py::gil_scoped_release released;
    table = calibrate_cost_model(config, step_logs, options);
  }
  return to_python(table);
}

// Each simulation forks while this thread holds the GIL (it is never released here: the fit is
// seconds of work between forks); the child reinitializes its interpreter as simulate()'s does.
py::object calibrate_client(const RunConfig& config, const std::vector<std::string>& client_logs,
                            const py::object& prior, double holdout_fraction, int max_evaluations, std::uint64_t seed) {
  if (!(holdout_fraction >= 0 && holdout_fraction <= 0.95)) throw Error("holdout_fraction: expected a number in [0, 0.95]");
  if (max_evaluations < 5) throw Error("max_evaluations: expected an integer >= 5");
  if (client_logs.empty()) throw Error("client_logs: expected one or more files");
  sim::ClientFitOptions options;
  options.holdout_fraction = holdout_fraction;
  options.max_evaluations = max_evaluations;
  options.seed = seed;
  options.in_child = [] {
    PyOS_AfterFork_Child();
    PyEval_SaveThread();
  };
  std::vector<ClientLog> logs;
  for (const std::string& path : client_logs) logs.push_back(read_client_log(path));
  const nlohmann::json prior_table = prior.is_none() ? nlohmann::json() : from_python(prior);
  return to_python(sim::calibrate_from_client_logs(config, logs, prior_table, options));
}

py::object profile(const RunConfig& config, const std::string& device, int repeats, std::uint64_t seed,
                   bool pin_threads, const std::string& keep_steps) {
  if (repeats < 1 || repeats > 100) throw Error("repeats: expected an integer in [1, 100]");
  runtime::ProbeOptions options;
  options.device = device;
  options.repeats = repeats;
  options.seed = seed;
  options.pin_threads = pin_threads;
  options.steps_dir = keep_steps;
  nlohmann::json table;
  {
    py::gil_scoped_release released;
    table = runtime::profile_cost_model(config, options);
  }
  return to_python(table);
}

}  // namespace

void bind_runs(py::module_& m) {
  m.def("_calibrate", &calibrate, py::arg("config"), py::arg("step_logs"), py::arg("holdout_every") = 5,
        "Fits the calibrated cost model to runs' steps.csv (files or run folders); returns the cost file "
        "(format twinfer-cost-v1) with its fit report.");
  m.def("_calibrate_client", &calibrate_client, py::arg("config"), py::arg("client_logs"), py::arg("prior") = py::none(),
        py::arg("holdout_fraction") = 0.3, py::arg("max_evaluations") = 1000, py::arg("seed") = 1,
        "Fits the calibrated cost model to client-side per-request logs (vllm bench serve's JSON, or "
        "requests.csv) with the simulator in the loop; returns the cost file with its fit report.");
  m.def("_profile", &profile, py::arg("config"), py::arg("device") = "cpu", py::arg("repeats") = 3,
        py::arg("seed") = 1, py::arg("pin_threads") = false, py::arg("keep_steps") = "",
        "Runs probe workloads through the real worker engine and fits the calibrated cost model; returns "
        "the cost file with its fit report.");
  m.def("_simulate", &simulate, py::arg("config"), py::arg("trace"), py::arg("seed") = 1, py::arg("rate_scale") = 1.0,
        py::arg("out_dir") = "", py::arg("progress") = false, py::arg("faults") = "",
        "Simulates the trace on the config's cluster (in a forked child), with the fault scenario at path "
        "`faults` if not empty; returns the summary dict and writes summary.json, requests.csv and "
        "timeline.json into out_dir when it is not empty.");
  m.def("_run", &run, py::arg("config"), py::arg("trace"), py::arg("seed") = 1, py::arg("rate_scale") = 1.0,
        py::arg("out_dir") = "", py::arg("device") = "cpu", py::arg("pin_threads") = false,
        py::arg("progress") = false, py::arg("faults") = "",
        "Serves the trace for real on the embedded runtime, with the fault scenario at path `faults` if not "
        "empty; returns the summary dict and writes the same files as the simulator into out_dir when it is "
        "not empty.");
}

}  // namespace twinfer::py_bindings
