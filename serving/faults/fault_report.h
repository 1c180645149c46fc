// The "faults" section of summary.json, written the same way by the simulator and the runtime.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serving/faults/fault_scenario.h"
#include "serving/health/worker_health.h"

namespace twinfer {

// {"scenario": its file, "injected": [{type, worker, at_s, end_s, factor | latency_ms, loss}],
//  "health_changes": [{at_s, worker, from, to, why}] (the first 1000), "health_changes_total": n}.
// Workers are named by `worker_names` (by index).
nlohmann::json fault_report(const FaultScenario& scenario, const std::vector<HealthChange>& changes,
                            const std::vector<std::string>& worker_names);

}  // namespace twinfer
