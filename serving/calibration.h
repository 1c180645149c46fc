// Fits a calibrated cost model (policies/cost/calibrated_cost_model.h) to the steps that runs
// logged (steps.csv): one entry per (device, model, tp) of the config's instances.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/cost/cost_fit.h"
#include "serving/run_config.h"
#include "serving/step_log.h"

namespace twinfer {

// The measured time of a logged iteration as the simulator charges it: the step itself plus the
// worker's own time before it (BatchRecord::engine_us).
MeasuredStep measured_step(const BatchRecord& record);

// For each step, how busy the other instances of its worker's host were during it (see
// MeasuredStep::overlap), from the other workers' steps of its run in `steps` (workers by
// instance name).
std::vector<double> host_overlaps(const RunConfig& config, const std::vector<LoggedStep>& steps);

// Fits every (device, model, tp) of `config` whose instances ran steps in the logs (`step_logs`:
// steps.csv files, or run folders holding one; a folder's requests.csv, when there is one, also
// gives the dispatch delay, under meta.engine). Each worker named in a log must be an instance of
// the config. Request-level batches are counted but not fitted. Steps that ran beside busy
// instances of their host fit the contention (the steps of one log share one clock; each log is
// its own run). Returns the cost file
// (format twinfer-cost-v1) with each entry's fit report under "fit" and `meta` merged into "meta".
// Throws twinfer::Error naming the file for an unreadable log or an unknown worker, and when no
// instance has enough steps.
nlohmann::json calibrate_cost_model(const RunConfig& config, const std::vector<std::string>& step_logs,
                                    const FitOptions& options = FitOptions(),
                                    const nlohmann::json& meta = nlohmann::json::object());

// The runtime's own handoff of a request to its worker (sim.dispatch_us): for each request that
// found its worker idle (no step of it running at the arrival) and started, start - arrival, in
// microseconds. `workers` names each request's worker; `steps` are the same run's.
std::vector<double> dispatch_delays_us(const std::vector<RequestRecord>& requests,
                                       const std::vector<std::string>& workers, const std::vector<LoggedStep>& steps);

// {"dispatch_us": median, "p90_us", "requests"} of the delays, for a cost file's meta.engine;
// null when there are none.
nlohmann::json dispatch_summary(std::vector<double> delays_us);

// Fits from steps already in memory, grouped by the config's instance names.
nlohmann::json calibrate_cost_model(const RunConfig& config, const std::vector<LoggedStep>& steps,
                                    const std::string& source, const FitOptions& options,
                                    const nlohmann::json& meta);

}  // namespace twinfer
