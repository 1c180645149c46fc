// `twinfer run`: the whole serving system in one process. The router (admission + routing, the
// same policy objects as the simulator's) runs in the calling thread and replays the trace open
// loop in real time; each model instance of the config is a WorkerEngine thread on a real backend.
// Writes the same summary.json, requests.csv and timeline.json as `twinfer sim`.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "serving/recorder.h"
#include "serving/run_config.h"
#include "serving/run_options.h"
#include "traces/trace.h"

namespace twinfer::runtime {

// The shared run options, plus how the workers run.
struct EmbeddedRunOptions : RunOptions {
  EmbeddedRunOptions() = default;
  explicit EmbeddedRunOptions(RunOptions common) : RunOptions(std::move(common)) {}

  std::string device = "cpu";   // backend of every worker: "cpu", or "cuda" for cuda:<instance's first GPU>
  bool pin_threads = false;     // pin worker threads to cores, spread over NUMA nodes
  std::vector<RequestRecord>* records_out = nullptr;  // when set, receives every request's record
};

// Runs the trace to the end (every request completed, rejected, dropped or timed out; see
// embedded_router.h for protection, faults, autoscaling and traffic splits) and returns the
// summary, whose "run" key holds {wall_s, steps, device, loads} (loads: every model load, see
// EmbeddedRouter::loads_json()), "cost" (and with autoscaling "autoscaling") as the simulator
// writes them, "models" the per-version figures when the cluster serves several models and, with
// faults or health changes, "faults" (fault_report(): the faults injected and every health
// transition, plus applied: [...] and requests_lost_on_crash).
// Throws twinfer::Error on bad policies, a model the backend cannot build, or a request that
// never ended.
nlohmann::json run_embedded(const RunConfig& config, const Trace& trace, const EmbeddedRunOptions& options);


}  // namespace twinfer::runtime
