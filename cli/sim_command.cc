#include <iostream>

#include "core/error.h"
#include "serving/run_config.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/run_inputs.h"
#include "cli/table.h"
#include "sim/simulator.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer sim --config C [--trace T] [--out DIR] [--seed N] [--rate-scale X]\n"
    "                   [--set key=value ...] [--format F] [--poisson] [--faults F] [--json] [--no-progress]\n"
    "\n"
    "Replays trace T (default: the config's workload.trace) on the cluster of config C through its\n"
    "policies, prints a results table, and writes DIR/summary.json, DIR/requests.csv and\n"
    "DIR/timeline.json (open it in Perfetto) when --out is given.\n"
    "\n"
    "  --config C        cluster + policies config (JSON), e.g. configs/h100x8.json\n"
    "  --trace T         trace file; --format F forces its format (native_csv, native_jsonl, azure,\n"
    "                    burstgpt, mooncake; default auto)\n"
    "  --out DIR         output folder (created)\n"
    "  --seed N          seed of randomized policies (default 1); same inputs + seed = same bytes\n"
    "  --rate-scale X    replay X times faster (2 = twice the request rate)\n"
    "  --poisson         redraw the arrivals as a Poisson process at the trace's mean rate (seeded)\n"
    "  --faults F        inject the timed faults of scenario F (crashes, slowdowns, link faults,\n"
    "                    partitions, router restarts; see configs/faults/README.md)\n"
    "  --set key=value   override a config key, e.g. --set policies.router.name=least_work\n"
    "                    or --set policies.batcher.max_num_batched_tokens=4096 (repeatable)\n"
    "  --json            print summary.json instead of the table\n"
    "  --no-progress     no progress bar on stderr\n";

}  // namespace

int sim_command(int argc, char** argv) {
  if (wants_help(argc, argv, kUsage)) return 0;
  Args args(argc, argv, {"config", "trace", "out", "seed", "rate-scale", "format", "faults"}, {"json", "no-progress", "poisson"},
            {"set"});
  RunInputs in = load_run_inputs(args);
  const sim::SimRunOptions opt{run_options(args, in)};
  nlohmann::json summary = sim::simulate(in.config, in.trace, opt);
  if (args.has("json")) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::cout << "config " << in.config.source << ", trace " << in.trace.source << " (" << in.trace.requests.size()
              << " requests)\n";
    print_summary(summary, std::cout);
    if (!opt.out_dir.empty()) std::cout << "\nwrote " << opt.out_dir << "/{summary.json,requests.csv,timeline.json}\n";
  }
  return 0;
}

}  // namespace twinfer::cli
