// Loading the config and trace that sim and compare share.
#pragma once

#include "policies/run_config.h"
#include "sim/cli/args.h"
#include "sim/simulator.h"
#include "traces/trace.h"

namespace twinfer::cli {

struct RunInputs {
  RunConfig config;
  Trace trace;
};

// --config (required), --set overrides, --trace (or the config's workload.trace), --format, and
// --poisson (the trace's arrivals redrawn as a Poisson process at its mean rate, seeded by --seed).
RunInputs load_run_inputs(const Args& args);
// --seed, --rate-scale, and the progress bar unless --no-progress.
sim::SimRunOptions sim_options(const Args& args);

}  // namespace twinfer::cli
