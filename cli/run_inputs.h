// Loading the config, trace and run options that sim, run, compare and fidelity share.
#pragma once

#include "serving/faults/fault_scenario.h"
#include "serving/run_config.h"
#include "serving/run_options.h"
#include "cli/args.h"
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
// --seed (a non-negative integer, default 1).
std::uint64_t seed_option(const Args& args);
// The options every run takes: --seed, --rate-scale, --out, the progress bar unless --no-progress,
// and the fault scenario of `inputs`.
RunOptions run_options(const Args& args, const RunInputs& inputs);

}  // namespace twinfer::cli
