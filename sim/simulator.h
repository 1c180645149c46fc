// Replays a trace on the cluster of a config through the configured policies, on SimGrid.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "serving/run_config.h"
#include "serving/run_options.h"
#include "traces/trace.h"

namespace twinfer::sim {

// The shared run options, plus how the simulation process is run.
struct SimRunOptions : RunOptions {
  SimRunOptions() = default;
  explicit SimRunOptions(RunOptions common) : RunOptions(std::move(common)) {}

  // SimGrid keeps global state across engines in one process (its clock is never reset), so by
  // default each run happens in a forked child, which makes every run fresh and bit-exact. Set
  // in_process only for a process that runs exactly one simulation (profilers, debuggers).
  bool in_process = false;
  // Fork hooks (for embedders such as the Python bindings, whose interpreter must be reinitialized
  // in the child): in_child runs first in the forked child, in_parent in the parent right after
  // the fork. Neither runs when in_process. Either may be empty.
  std::function<void()> in_child;
  std::function<void()> in_parent;
};

// Runs one simulation and returns its summary (the object written to summary.json), whose "sim"
// key holds {wall_s, events, simulated_s, max_rss_mb}: wall-clock figures, the only ones that
// differ between two runs of the same inputs. Throws twinfer::Error on bad policies or parameters,
// on a request that never ended, or when the simulation process dies.
nlohmann::json simulate(const RunConfig& config, const Trace& trace, const SimRunOptions& options);

}  // namespace twinfer::sim
