#include <fstream>
#include <iostream>

#include "core/error.h"
#include "runtime/engine/profiler.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer profile --config C [--device cpu|cuda:N] --out profile.json [--repeats N]\n"
    "                       [--set key=value ...]\n"
    "\n"
    "Measures the backend's iteration and batch times over a grid of shapes for every distinct\n"
    "(device, model, tensor parallelism) of the config's instances, and writes them as a 'profile'\n"
    "cost-model table: use it in a simulation with\n"
    "  --set policies.cost_model.name=profile --set policies.cost_model.path=profile.json\n";

}  // namespace

int profile_command(int argc, char** argv) {
  if (wants_help(argc, argv, kUsage)) return 0;
  Args args(argc, argv, {"config", "device", "out", "repeats"}, {}, {"set"});
  RunConfig config = load_run_config(args.required("config"), args.all("set"));
  runtime::ProfileGrid grid;
  grid.repeats = static_cast<int>(args.integer("repeats", grid.repeats, 1, 1'000'000));
  nlohmann::json table = runtime::profile_backends(config, args.get("device", "cpu"), grid, true);
  const std::string out = args.required("out");
  std::ofstream f(out);
  f << table.dump(2) << "\n";
  if (!f) throw Error(out + ": cannot write");
  std::cout << "wrote " << out << " (" << table["entries"].size() << " entries)\n";
  return 0;
}

}  // namespace twinfer::cli
