#include <iostream>

#include "core/error.h"
#include "runtime/engine/profiler.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer profile --config C [--device cpu|cuda] --out cost.json [--repeats N] [--seed N]\n"
    "                       [--pin] [--keep-steps DIR] [--set key=value ...]\n"
    "\n"
    "Runs probe workloads through the real worker engine (the config's batcher) on one instance of\n"
    "every distinct (device, model, tensor parallelism) of the config, logs every step, and fits\n"
    "the calibrated cost model to them (see 'twinfer calibrate'). Use the file in a simulation with\n"
    "  --set policies.cost_model.name=calibrated --set policies.cost_model.path=cost.json\n"
    "--pin pins the worker thread to a core; --keep-steps keeps each repeat's steps.csv.\n";

}  // namespace

int profile_command(int argc, char** argv) {
  if (wants_help(argc, argv, kUsage)) return 0;
  Args args(argc, argv, {"config", "device", "out", "repeats", "seed", "keep-steps"}, {"pin"}, {"set"});
  RunConfig config = load_run_config(args.required("config"), args.all("set"));
  runtime::ProbeOptions opt;
  opt.repeats = static_cast<int>(args.integer("repeats", opt.repeats, 1, 100));
  opt.seed = static_cast<std::uint64_t>(args.integer("seed", 1, 0, std::int64_t{1} << 62));
  opt.device = args.get("device", "cpu");
  opt.pin_threads = args.has("pin");
  opt.steps_dir = args.get("keep-steps");
  opt.verbose = true;
  const std::string out = args.required("out");
  nlohmann::json table = runtime::profile_cost_model(config, opt);
  write_cost_file(table, out);
  return 0;
}

}  // namespace twinfer::cli
