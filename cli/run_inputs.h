// Loading the config and trace that sim and compare share.
#pragma once

#include "policies/faults/fault_scenario.h"
#include "policies/run_config.h"
#include "cli/args.h"
#include "sim/simulator.h"
#include "traces/trace.h"

namespace twinfer::cli {

struct RunInputs {
  RunConfig config;
  Trace trace;
  FaultScenario faults;  // --faults F, checked against the config's cluster; empty without it
};

// --config (required), --set overrides, --trace (or the config's workload.trace), --format, and
// --poisson (the trace's arrivals redrawn as a Poisson process at its mean rate, seeded by --seed),
// and --faults when the command takes it.
RunInputs load_run_inputs(const Args& args);
// --seed, --rate-scale, and the progress bar unless --no-progress.
sim::SimRunOptions sim_options(const Args& args);

}  // namespace twinfer::cli
