#include <cstdio>
#include <cstring>
#include <memory>

#include "core/error.h"
#include "serving/faults/fault_scenario.h"
#include "runtime/rpc/router_server.h"
#include "runtime/rpc/serve_stack.h"
#include "runtime/rpc/stop_signals.h"
#include "cli/args.h"
#include "cli/security_options.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/run_inputs.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer serve --config C (--workers ADDR0,ADDR1,... | --spawn-workers [--restart-after-s S]\n"
    "                     [--device cpu|cuda:N]) [--faults F [--faults-start listen|first-request]]\n"
    "                     [--listen HOST:PORT] [--metrics-port P] [--seed N] [--poll-ms MS]\n"
    "                     [--state-timeout-ms MS] [--connect-timeout-s S] [--set key=value ...]\n"
    "                     [--tls-cert F --tls-key F] [--tls-ca F] [--token-file F]\n"
    "\n"
    "The router process: answers Infer calls (from 'twinfer replay' or any gRPC client) with the\n"
    "config's protection checks (limits, servable, shed), admission and router, the same policies as\n"
    "'twinfer sim', deciding on the workers' states (polled every few ms, plus the requests forwarded\n"
    "and not yet answered) and health, and forwards each admitted request to the chosen worker.\n"
    "Worker health (config key \"protection\"): every state answer is a heartbeat (a worker missing\n"
    "them turns suspect, then down); a forward refused or reset marks its worker down at once; a\n"
    "circuit breaker per worker opens on failing forwards. A failed forward is retried on another\n"
    "worker after the retry policy's backoff, or ends dropped; protection.request_timeout_ms ends a\n"
    "request timed_out (its worker drops it). Every request is answered once: completed, rejected,\n"
    "dropped or timed_out, with its reason; /metrics counts them, and the health of each worker.\n"
    "Traffic splits (policies.traffic_split) and elastic pools (autoscaling, with --spawn-workers) run\n"
    "as in 'twinfer sim', on a clock that starts at the first request (a replay's time zero): a pool\n"
    "that scales up starts a worker process (ready once it answers and the modeled cold start passed),\n"
    "one that scales down drains a worker and stops its process once nothing is in flight to it.\n"
    "SIGINT or SIGTERM: stop accepting requests, answer those in flight, stop the workers it started, exit.\n"
    "\n"
    "  --workers ADDR,...      one worker address per instance of the config, in order (workers\n"
    "                          started elsewhere, e.g. by 'twinfer worker')\n"
    "  --spawn-workers         start one 'twinfer worker' per instance (this binary, loopback ports chosen\n"
    "                          at startup, same --config/--set/--seed) and supervise them: a worker that\n"
    "                          exits unexpectedly (kill -9) is started again on the same address and\n"
    "                          rejoins once it answers; they are stopped with serve\n"
    "  --restart-after-s S     with --spawn-workers: delay before restarting a worker that exited (default 1)\n"
    "  --device cpu|cuda:N     with --spawn-workers: the workers' backend (default cpu)\n"
    "  --faults F              a fault scenario (as 'twinfer sim --faults'): crash (SIGKILL the worker,\n"
    "                          restart it at recovery; needs --spawn-workers), slowdown (the worker's\n"
    "                          steps take factor x longer), link (latency and loss) and partition (a\n"
    "                          TCP proxy between serve and that worker), router_restart (in-flight\n"
    "                          requests end dropped \"router restarted\"; calls meanwhile fail UNAVAILABLE)\n"
    "  --faults-start WHEN     the fault times' zero: 'listen' (default: when serve starts listening,\n"
    "                          its 'listening' line) or 'first-request' (when the first Infer arrives,\n"
    "                          about the replay's start)\n"
    "  --listen HOST:PORT      gRPC address (default 127.0.0.1:50060; port 0 picks a free one)\n"
    "  --metrics-port P        HTTP /metrics (Prometheus) and /healthz on the --listen host\n"
    "  --poll-ms MS            worker state polling interval (default 5)\n"
    "  --state-timeout-ms MS   deadline of one state poll (default 2000)\n"
    "  --connect-timeout-s S   at startup, wait this long for every worker (default 30)\n"
    "Security (README: Security): with --spawn-workers the workers get serve's certificate, key and\n"
    "token, and --tls-ca is what serve verifies them against.\n";
const std::string kFullUsage = std::string(kUsage) + kSecurityUsage;

}  // namespace

int serve_command(int argc, char** argv) {
  if (wants_help(argc, argv, kFullUsage.c_str())) return 0;
  Args args(argc, argv,
            {"config", "workers", "listen", "metrics-port", "seed", "poll-ms", "state-timeout-ms", "connect-timeout-s",
             "restart-after-s", "device", "faults", "faults-start", "tls-cert", "tls-key", "tls-ca", "token-file"},
            {"spawn-workers"}, {"set"});
  runtime::ServeStackOptions o;
  o.config_path = args.required("config");
  o.overrides = args.all("set");
  o.config = load_run_config(o.config_path, o.overrides);
  o.spawn_workers = args.has("spawn-workers");
  o.workers = args.list("workers");
  if (!o.spawn_workers && (args.has("restart-after-s") || args.has("device"))) {
    throw Error("--restart-after-s and --device need --spawn-workers");
  }
  o.device = args.get("device", "cpu");
  o.router.listen = args.get("listen", "127.0.0.1:50060");
  o.router.security = security_options(args);
  o.router.metrics_port = static_cast<int>(args.integer("metrics-port", -1, 0, 65535));
  o.router.seed = seed_option(args);
  o.router.poll_interval_ms = static_cast<int>(args.integer("poll-ms", 5, 1, 60'000));
  o.router.state_timeout_ms = static_cast<int>(args.integer("state-timeout-ms", 2000, 1, 3'600'000));
  o.router.connect_timeout_ms = 1000 * static_cast<int>(args.integer("connect-timeout-s", 30, 0, 86'400));
  o.restart_after_s = args.number("restart-after-s", 1, 0, 86'400);
  const std::string faults_start = args.get("faults-start", "listen");
  if (faults_start != "listen" && faults_start != "first-request") {
    throw Error("--faults-start: expected 'listen' or 'first-request', got '" + faults_start + "'");
  }
  o.faults_from_first_request = faults_start == "first-request";
  if (args.has("faults")) o.faults = load_fault_scenario(args.get("faults"), o.config.cluster);

  const sigset_t stop = runtime::block_stop_signals();
  runtime::ServeStack stack(std::move(o));
  runtime::RouterServer& server = stack.router();
  std::printf("twinfer serve listening on %s, routing to %zu worker(s)", server.address().c_str(), stack.workers());
  if (stack.spawned()) std::printf(" (started by serve)");
  if (server.metrics_port() >= 0) std::printf(", metrics on port %d (/metrics, /healthz)", server.metrics_port());
  if (stack.has_faults()) std::printf(", %zu fault(s) from %s", stack.faults().faults.size(), faults_start.c_str());
  std::printf("\n");
  for (const std::string& warning : stack.warnings()) std::fprintf(stderr, "twinfer serve: %s\n", warning.c_str());
  std::fflush(stdout);
  stack.start_faults();
  const int signal = runtime::wait_for_stop_signal(stop);
  std::fprintf(stderr, "twinfer serve: %s, answering the requests in flight\n", strsignal(signal));
  stack.stop();
  std::fprintf(stderr, "twinfer serve: stopped\n");
  return 0;
}

}  // namespace twinfer::cli
