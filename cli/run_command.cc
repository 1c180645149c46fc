#include <iostream>

#include "core/error.h"
#include "runtime/engine/embedded_runtime.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/run_inputs.h"
#include "cli/table.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer run --config C [--trace T] [--out DIR] [--device cpu|cuda] [--seed N]\n"
    "                   [--rate-scale X] [--faults F] [--set key=value ...] [--pin] [--json]\n"
    "                   [--no-progress]\n"
    "\n"
    "Serves trace T for real in one process: the config's admission and router in this thread\n"
    "replay the trace open loop in real time, and every model instance is a worker thread running\n"
    "the config's batcher on a real transformer (seeded weights, sizes from the config's model).\n"
    "Writes the same summary.json, requests.csv and timeline.json as 'twinfer sim'.\n"
    "\n"
    "  --device cpu|cuda  backend of every worker (cuda: the GPU of each instance's first GPU index)\n"
    "  --pin              pin each worker thread to its own core, spread over NUMA nodes\n"
    "  --no-progress      no progress bar on stderr (drawn only when stderr is a terminal)\n"
    "  --faults F         apply the fault scenario F (JSON, see configs/faults/) on the real clock from\n"
    "                     the start of the replay: crash (the worker thread dies, its requests are\n"
    "                     retried elsewhere per protection.retry; recovery reloads the model), slowdown\n"
    "                     (every step takes factor times as long), link (delays on the router<->worker\n"
    "                     hand-off), partition (hand-offs and heartbeats wait for the heal; the worker\n"
    "                     goes down and its requests are retried) and router_restart (requests in\n"
    "                     flight dropped 'router restarted', arrivals rejected 'router unavailable').\n"
    "                     summary.json gains 'faults' (applied, with times) and 'health' (transitions).\n";

}  // namespace

int run_command(int argc, char** argv) {
  if (wants_help(argc, argv, kUsage)) return 0;
  Args args(argc, argv, {"config", "trace", "out", "seed", "rate-scale", "format", "device", "faults"},
            {"json", "pin", "poisson", "no-progress"},
            {"set"});
  RunInputs in = load_run_inputs(args);
  runtime::EmbeddedRunOptions opt{run_options(args, in)};
  opt.device = args.get("device", "cpu");
  opt.pin_threads = args.has("pin");
  nlohmann::json summary = runtime::run_embedded(in.config, in.trace, opt);
  if (args.has("json")) {
    std::cout << summary.dump(2) << "\n";
    return 0;
  }
  std::cout << "config " << in.config.source << ", trace " << in.trace.source << " (" << in.trace.requests.size()
            << " requests), real run on " << opt.device << "\n";
  print_summary(summary, std::cout);
  std::cout << "\nserved in " << fmt(summary["run"]["wall_s"], 2) << " s wall, " << summary["run"]["steps"]
            << " steps, " << summary["requests"]["retries"] << " retries\n";
  if (summary.contains("faults")) {
    std::cout << summary["faults"]["applied"].size() << " fault events applied, " << summary["faults"]["health_changes"].size()
              << " health transitions\n";
  }
  if (!opt.out_dir.empty()) std::cout << "wrote " << opt.out_dir << "/{summary.json,requests.csv,timeline.json}\n";
  return 0;
}

}  // namespace twinfer::cli
