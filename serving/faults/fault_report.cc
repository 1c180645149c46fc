#include "serving/faults/fault_report.h"

namespace twinfer {

nlohmann::json fault_report(const FaultScenario& scenario, const std::vector<HealthChange>& changes,
                            const std::vector<std::string>& worker_names) {
  nlohmann::json injected = nlohmann::json::array();
  for (const Fault& f : scenario.faults) {
    nlohmann::json j = {{"type", fault_type_name(f.type)}, {"at_s", s_from_us(f.at_us)}};
    if (f.worker >= 0) j["worker"] = worker_names.at(std::size_t(f.worker));
    j["end_s"] = f.end_us() == kNever ? nlohmann::json(nullptr) : nlohmann::json(s_from_us(f.end_us()));
    if (f.type == FaultType::kSlowdown) j["factor"] = f.factor;
    if (f.type == FaultType::kLink) {
      j["latency_ms"] = ms_from_us(f.latency_us);
      j["loss"] = f.loss;
    }
    injected.push_back(j);
  }
  constexpr std::size_t kMaxListed = 1000;
  nlohmann::json listed = nlohmann::json::array();
  for (const HealthChange& c : changes) {
    if (listed.size() == kMaxListed) break;
    listed.push_back({{"at_s", s_from_us(c.at_us)}, {"worker", worker_names.at(std::size_t(c.worker))},
                      {"from", health_name(c.from)}, {"to", health_name(c.to)}, {"why", c.why}});
  }
  return {{"scenario", scenario.source}, {"injected", injected}, {"health_changes", listed},
          {"health_changes_total", changes.size()}};
}

}  // namespace twinfer
