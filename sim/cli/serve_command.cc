#include <cstdio>
#include <cstring>

#include "policies/error.h"
#include "runtime/rpc/router_server.h"
#include "runtime/rpc/stop_signals.h"
#include "sim/cli/args.h"
#include "sim/cli/commands.h"
#include "sim/cli/help.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer serve --config C --workers ADDR0,ADDR1,... [--listen HOST:PORT] [--metrics-port P]\n"
    "                     [--seed N] [--poll-ms MS] [--state-timeout-ms MS] [--connect-timeout-s S]\n"
    "                     [--set key=value ...]\n"
    "\n"
    "The router process: answers Infer calls (from 'twinfer replay' or any gRPC client) with the\n"
    "config's admission and router, the same policies as 'twinfer sim', deciding on the workers'\n"
    "states (polled every few ms, plus the requests forwarded and not yet answered), and forwards\n"
    "each admitted request to the chosen 'twinfer worker'. A worker that stops answering is marked\n"
    "down (reported here and in /metrics); its requests in flight end as dropped.\n"
    "SIGINT or SIGTERM: stop accepting requests, answer those in flight, exit.\n"
    "\n"
    "  --workers ADDR,...      one worker address per instance of the config, in order\n"
    "  --listen HOST:PORT      gRPC address (default 127.0.0.1:50060; port 0 picks a free one)\n"
    "  --metrics-port P        HTTP /metrics (Prometheus) and /healthz on the --listen host\n"
    "  --poll-ms MS            worker state polling interval (default 5)\n"
    "  --state-timeout-ms MS   a worker slower than this to report its state is marked down (default 2000)\n"
    "  --connect-timeout-s S   at startup, wait this long for every worker (default 30)\n";

int integer_option(const Args& args, const std::string& name, int fallback, int min) {
  double v = args.number(name, fallback);
  if (v != static_cast<int>(v) || v < min) {
    throw Error("--" + name + ": expected an integer >= " + std::to_string(min));
  }
  return static_cast<int>(v);
}

}  // namespace

int serve_command(int argc, char** argv) {
  if (wants_help(argc, argv, kUsage)) return 0;
  Args args(argc, argv,
            {"config", "workers", "listen", "metrics-port", "seed", "poll-ms", "state-timeout-ms", "connect-timeout-s"},
            {}, {"set"});
  RunConfig config = load_run_config(args.required("config"), args.all("set"));
  std::vector<std::string> workers = args.list("workers");
  if (workers.empty()) throw Error("--workers is required: one HOST:PORT per instance of the config");
  runtime::RouterServerOptions opt;
  opt.listen = args.get("listen", "127.0.0.1:50060");
  opt.metrics_port = args.has("metrics-port") ? integer_option(args, "metrics-port", 0, 0) : -1;
  opt.seed = static_cast<std::uint64_t>(integer_option(args, "seed", 1, 0));
  opt.poll_interval_ms = integer_option(args, "poll-ms", 5, 1);
  opt.state_timeout_ms = integer_option(args, "state-timeout-ms", 2000, 1);
  opt.connect_timeout_ms = 1000 * integer_option(args, "connect-timeout-s", 30, 0);
  const sigset_t stop = runtime::block_stop_signals();
  runtime::RouterServer server(config, workers, opt);
  std::printf("twinfer serve listening on %s, routing to %zu worker(s)", server.address().c_str(), workers.size());
  if (server.metrics_port() >= 0) std::printf(", metrics on port %d (/metrics, /healthz)", server.metrics_port());
  std::printf("\n");
  std::fflush(stdout);
  const int signal = runtime::wait_for_stop_signal(stop);
  std::fprintf(stderr, "twinfer serve: %s, answering the requests in flight\n", strsignal(signal));
  server.shutdown();
  std::fprintf(stderr, "twinfer serve: stopped\n");
  return 0;
}

}  // namespace twinfer::cli
