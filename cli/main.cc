// build/bin/twinfer: the command-line front end.
#include <cstdio>
#include <cstring>
#include <string>

#include "core/error.h"
#include "cli/commands.h"

namespace {

const char kUsage[] =
    "usage: twinfer <command> [options]\n"
    "\n"
    "commands:\n"
    "  sim       replay a trace on a simulated cluster and write summary.json, requests.csv, timeline.json\n"
    "  compare   simulate every combination of routers/batchers/admissions and print one table\n"
    "  run       serve a trace for real in one process (router + worker threads on real kernels)\n"
    "  profile   run probe workloads through the real engine and fit the calibrated cost model\n"
    "  calibrate fit the calibrated cost model to the steps.csv of real runs\n"
    "  fidelity  profile, then run a trace both for real and simulated, and compare them\n"
    "  worker    serve one model instance of a config over gRPC (for 'serve')\n"
    "  serve     the router process: admission + routing to 'worker' processes, /metrics\n"
    "  replay    open-loop load generator: replay a trace against 'serve', write the run's files\n"
    "  trace     generate a synthetic trace, or describe / convert a trace file\n"
    "  policies  list the built-in policies of each kind\n"
    "\n"
    "Run 'twinfer <command> --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "sim") return twinfer::cli::sim_command(argc - 2, argv + 2);
    if (cmd == "compare") return twinfer::cli::compare_command(argc - 2, argv + 2);
    if (cmd == "trace") return twinfer::cli::trace_command(argc - 2, argv + 2);
    if (cmd == "policies") return twinfer::cli::policies_command(argc - 2, argv + 2);
    if (cmd == "run") return twinfer::cli::run_command(argc - 2, argv + 2);
    if (cmd == "profile") return twinfer::cli::profile_command(argc - 2, argv + 2);
    if (cmd == "calibrate") return twinfer::cli::calibrate_command(argc - 2, argv + 2);
    if (cmd == "fidelity") return twinfer::cli::fidelity_command(argc - 2, argv + 2);
    if (cmd == "worker") return twinfer::cli::worker_command(argc - 2, argv + 2);
    if (cmd == "serve") return twinfer::cli::serve_command(argc - 2, argv + 2);
    if (cmd == "replay") return twinfer::cli::replay_command(argc - 2, argv + 2);
  } catch (const twinfer::Error& e) {
    std::fprintf(stderr, "twinfer %s: error: %s\n", cmd.c_str(), e.what());
    return 1;
  } catch (const std::exception& e) {
    // Whatever escaped is still an error message and exit code 1, never an abort.
    std::fprintf(stderr, "twinfer %s: error: %s\n(an unexpected error: please report it with the command that caused it)\n",
                 cmd.c_str(), e.what());
    return 1;
  } catch (...) {
    std::fprintf(stderr, "twinfer %s: error: an unknown exception (please report it with the command that caused it)\n",
                 cmd.c_str());
    return 1;
  }
  std::fprintf(stderr, "twinfer: unknown command '%s'\n\n%s", cmd.c_str(), kUsage);
  return 2;
}
