// One simulation inside this process. Prefer simulate() (simulator.h), which runs it in a child.
#pragma once

#include <nlohmann/json.hpp>

#include "serving/run_config.h"
#include "sim/simulator.h"
#include "traces/trace.h"

namespace twinfer::sim {

// Runs the engine to the end and writes the outputs to options.out_dir (if set). Returns the
// summary. REQUIRES: no other SimGrid engine ran in this process (see SimRunOptions::in_process).
nlohmann::json run_in_process(const RunConfig& config, const Trace& trace, const SimRunOptions& options);

}  // namespace twinfer::sim
