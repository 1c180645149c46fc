// Fuzz target: the fault scenario parser (serving/faults/fault_scenario.h) on arbitrary JSON text,
// against the cluster of configs/h100x8.json (8 workers, node/gpu0 .. node/gpu7).
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "serving/faults/fault_scenario.h"
#include "serving/run_config.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using twinfer::fuzz::check;

const twinfer::ClusterConfig& cluster() {
  static const twinfer::ClusterConfig c =
      twinfer::load_run_config(std::string(TWINFER_SOURCE_DIR) + "/configs/h100x8.json").cluster;
  return c;
}

// What a parsed scenario promises: workers in range, times not negative, events in time order.
void check_scenario(const twinfer::FaultScenario& s) {
  const int workers = static_cast<int>(cluster().instances.size());
  for (const twinfer::Fault& f : s.faults) {
    check(f.at_us >= 0, "fault times are not negative");
    check(f.duration_us > 0, "faults last longer than 0");
    check(f.end_us() >= f.at_us, "a fault ends after it starts");
    check(f.type == twinfer::FaultType::kRouterRestart ? f.worker == -1 : f.worker >= 0 && f.worker < workers,
          "workers are in range");
  }
  const auto events = s.events();
  for (std::size_t i = 1; i < events.size(); ++i) check(events[i - 1].at_us <= events[i].at_us, "events are sorted");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > twinfer::fuzz::kMaxInputBytes) return 0;
  // load_fault_scenario() turns a JSON syntax error into twinfer::Error naming the file; from memory
  // a syntax error simply ends the input here.
  const nlohmann::json j = nlohmann::json::parse(twinfer::fuzz::as_text(data, size), nullptr, false);
  if (j.is_discarded()) return 0;
  try {
    check_scenario(twinfer::parse_fault_scenario(j, "fuzz.json", cluster()));
  } catch (const twinfer::Error&) {
  }
  return 0;
}
