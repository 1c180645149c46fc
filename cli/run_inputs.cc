#include "cli/run_inputs.h"

#include <cmath>

#include "core/error.h"

namespace twinfer::cli {

RunInputs load_run_inputs(const Args& args) {
  RunInputs in;
  in.config = load_run_config(args.required("config"), args.all("set"));
  std::string trace = args.get("trace");
  if (trace.empty()) {
    if (in.config.workload.trace.empty()) throw Error("--trace is required (the config has no workload.trace)");
    trace = in.config.workload.trace[0] == '/' ? in.config.workload.trace
                                               : in.config.base_dir + "/" + in.config.workload.trace;
  }
  in.trace = read_trace(trace, args.get("format", "auto"));
  if (args.has("poisson")) in.trace = poisson_arrivals(in.trace, seed_option(args));
  if (args.has("faults")) in.faults = load_fault_scenario(args.get("faults"), in.config.cluster);
  return in;
}

std::uint64_t seed_option(const Args& args) {
  // Up to 2^53: every integer a double holds exactly.
  return static_cast<std::uint64_t>(args.integer("seed", 1, 0, 9'007'199'254'740'992LL));
}

RunOptions run_options(const Args& args, const RunInputs& inputs) {
  RunOptions opt;
  opt.seed = seed_option(args);
  opt.rate_scale = args.number("rate-scale", 1.0);
  opt.out_dir = args.get("out");
  opt.progress = !args.has("no-progress");
  opt.faults = inputs.faults;
  return opt;
}

}  // namespace twinfer::cli
