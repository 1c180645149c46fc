// What every run of a trace takes, simulated (sim::SimRunOptions) or real
// (runtime::EmbeddedRunOptions): one struct, filled once by the command line and the bindings.
#pragma once

#include <cstdint>
#include <string>

#include "serving/faults/fault_scenario.h"

namespace twinfer {

struct RunOptions {
  std::uint64_t seed = 1;   // randomized policies (and a real run's model weights); same inputs, same seed,
                            // same simulated output bytes
  double rate_scale = 1.0;  // 2 replays the trace twice as fast (arrivals and deadlines scaled)
  std::string out_dir;      // where summary.json, requests.csv and timeline.json go; "" writes none
  bool progress = false;    // progress bar on stderr, drawn only when stderr is a terminal
  FaultScenario faults;     // timed faults to inject (empty: none)
};

}  // namespace twinfer
