#include <iostream>

#include "core/error.h"
#include "runtime/rpc/replay_client.h"
#include "cli/args.h"
#include "cli/security_options.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/run_inputs.h"
#include "cli/table.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer replay --trace T --target HOST:PORT [--out DIR] [--rate-scale X] [--config C]\n"
    "                      [--set key=value ...] [--format F] [--timeout-s S] [--poisson [--seed N]] [--json]\n"
    "                      [--tls-ca F] [--token-file F]\n"
    "\n"
    "Open-loop load generator for 'twinfer serve': sends each request of trace T at its trace time\n"
    "(never waiting for earlier answers), collects every result, and writes the same summary.json,\n"
    "requests.csv and timeline.json as 'twinfer sim' (times since the replay's start). Must run on\n"
    "the router's host: results carry that host's CLOCK_MONOTONIC times.\n"
    "\n"
    "  --config C     worker names and SLOs (else workers are named w0, w1, ... and SLOs are unset)\n"
    "  --rate-scale X 2 replays the trace twice as fast\n"
    "  --timeout-s S  a request unanswered this long ends as dropped (default 600)\n";

}  // namespace

int replay_command(int argc, char** argv) {
  if (wants_help(argc, argv, (std::string(kUsage) + kSecurityUsage).c_str())) return 0;
  Args args(argc, argv,
            {"trace", "target", "out", "rate-scale", "config", "format", "timeout-s", "seed", "tls-ca", "token-file"},
            {"json", "poisson"}, {"set"});
  const std::string target = args.required("target");
  Trace trace = read_trace(args.required("trace"), args.get("format", "auto"));
  if (args.has("poisson")) trace = poisson_arrivals(trace, seed_option(args));
  std::vector<std::string> workers;
  SloSpec slo;
  bool timeline = true;
  bool steps = false;
  if (args.has("config")) {
    RunConfig config = load_run_config(args.get("config"), args.all("set"));
    for (const auto& inst : config.cluster.instances) workers.push_back(inst.name);
    slo = config.workload.slo;
    timeline = config.sim.timeline;
    steps = config.sim.step_log;
  } else if (!args.all("set").empty()) {
    throw Error("--set needs --config");
  }
  runtime::ReplayOptions opt;
  opt.security = security_options(args);
  opt.rate_scale = args.number("rate-scale", 1.0);
  if (!(opt.rate_scale > 0)) throw Error("--rate-scale: expected a number > 0");
  const double timeout_s = args.number("timeout-s", 600, 0.001, 1e6);
  opt.request_timeout_ms = static_cast<int>(timeout_s * 1000);
  const std::string out = args.get("out");
  runtime::ReplayRun run = runtime::replay_trace(trace, target, opt);
  nlohmann::json summary = runtime::record_replay(run, workers, slo, opt.rate_scale, out, timeline, steps);
  if (args.has("json")) {
    std::cout << summary.dump(2) << "\n";
    return 0;
  }
  std::cout << "trace " << trace.source << " (" << trace.requests.size() << " requests) replayed against " << target
            << "\n";
  print_summary(summary, std::cout);
  std::cout << "\nreplayed in " << fmt(summary["run"]["wall_s"], 2) << " s wall\n";
  for (const auto& e : run.batch_errors) std::cout << "no batches from " << e << "\n";
  if (!out.empty()) std::cout << "wrote " << out << "/{summary.json,requests.csv,timeline.json}\n";
  return 0;
}

}  // namespace twinfer::cli
