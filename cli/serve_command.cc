#include <cstdio>
#include <cstring>
#include <memory>

#include "policies/error.h"
#include "policies/faults/fault_scenario.h"
#include "runtime/rpc/fault_proxy.h"
#include "runtime/rpc/router_server.h"
#include "runtime/rpc/serve_faults.h"
#include "runtime/rpc/stop_signals.h"
#include "runtime/rpc/wire.h"
#include "runtime/rpc/worker_supervisor.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer serve --config C (--workers ADDR0,ADDR1,... | --spawn-workers [--restart-after-s S]\n"
    "                     [--device cpu|cuda:N]) [--faults F [--faults-start listen|first-request]]\n"
    "                     [--listen HOST:PORT] [--metrics-port P] [--seed N] [--poll-ms MS]\n"
    "                     [--state-timeout-ms MS] [--connect-timeout-s S] [--set key=value ...]\n"
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
    "  --connect-timeout-s S   at startup, wait this long for every worker (default 30)\n";

int integer_option(const Args& args, const std::string& name, int fallback, int min) {
  double v = args.number(name, fallback);
  if (v != static_cast<int>(v) || v < min) {
    throw Error("--" + name + ": expected an integer >= " + std::to_string(min));
  }
  return static_cast<int>(v);
}

// The arguments of `twinfer worker` for instance w of the config.
std::vector<std::string> worker_args(const Args& args, int w, int port, std::uint64_t seed) {
  std::vector<std::string> out = {"worker",   "--config", args.required("config"), "--id", std::to_string(w),
                                  "--listen", "127.0.0.1:" + std::to_string(port), "--seed", std::to_string(seed),
                                  "--device", args.get("device", "cpu")};
  for (const auto& s : args.all("set")) {
    out.push_back("--set");
    out.push_back(s);
  }
  return out;
}

}  // namespace

int serve_command(int argc, char** argv) {
  if (wants_help(argc, argv, kUsage)) return 0;
  Args args(argc, argv,
            {"config", "workers", "listen", "metrics-port", "seed", "poll-ms", "state-timeout-ms", "connect-timeout-s",
             "restart-after-s", "device", "faults", "faults-start"},
            {"spawn-workers"}, {"set"});
  RunConfig config = load_run_config(args.required("config"), args.all("set"));
  const std::size_t n = config.cluster.instances.size();
  const bool spawn = args.has("spawn-workers");
  runtime::require_router_server_support(config, spawn);  // before any worker is started
  std::vector<std::string> workers = args.list("workers");
  if (spawn && !workers.empty()) throw Error("--workers and --spawn-workers exclude each other");
  if (!spawn && workers.empty()) {
    throw Error("--workers (one HOST:PORT per instance of the config) or --spawn-workers is required");
  }
  if (!spawn && (args.has("restart-after-s") || args.has("device"))) {
    throw Error("--restart-after-s and --device need --spawn-workers");
  }
  runtime::RouterServerOptions opt;
  opt.listen = args.get("listen", "127.0.0.1:50060");
  opt.metrics_port = args.has("metrics-port") ? integer_option(args, "metrics-port", 0, 0) : -1;
  opt.seed = static_cast<std::uint64_t>(integer_option(args, "seed", 1, 0));
  opt.poll_interval_ms = integer_option(args, "poll-ms", 5, 1);
  opt.state_timeout_ms = integer_option(args, "state-timeout-ms", 2000, 1);
  opt.connect_timeout_ms = 1000 * integer_option(args, "connect-timeout-s", 30, 0);
  const double restart_after_s = args.number("restart-after-s", 1);
  if (!(restart_after_s >= 0)) throw Error("--restart-after-s: expected a number >= 0");
  const std::string faults_start = args.get("faults-start", "listen");
  if (faults_start != "listen" && faults_start != "first-request") {
    throw Error("--faults-start: expected 'listen' or 'first-request', got '" + faults_start + "'");
  }
  FaultScenario scenario;
  if (args.has("faults")) scenario = load_fault_scenario(args.get("faults"), config.cluster);

  const sigset_t stop = runtime::block_stop_signals();
  std::unique_ptr<runtime::WorkerSupervisor> supervisor;
  if (spawn) {
    runtime::SupervisorOptions s;
    s.binary = runtime::self_executable();
    s.restart_after_s = restart_after_s;
    // Elastic pools: the router starts each worker when its pool first needs it.
    if (config.autoscaling.enabled()) s.start_retired.assign(n, true);
    const std::vector<int> ports = runtime::free_loopback_ports(static_cast<int>(n));
    for (std::size_t w = 0; w < n; ++w) {
      s.args.push_back(worker_args(args, static_cast<int>(w), ports[w], opt.seed));
      workers.push_back("127.0.0.1:" + std::to_string(ports[w]));
    }
    supervisor = std::make_unique<runtime::WorkerSupervisor>(s);
    supervisor->start();
    opt.processes = supervisor.get();
  }
  // Link faults need serve's connections to those workers to pass through a proxy.
  runtime::FaultTargets targets;
  targets.supervisor = supervisor.get();
  targets.workers = workers;
  std::vector<std::unique_ptr<runtime::FaultProxy>> proxies;
  std::vector<std::string> routed = workers;
  const std::vector<bool> needs_proxy = runtime::workers_needing_proxies(scenario, workers.size());
  for (std::size_t w = 0; w < workers.size(); ++w) {
    if (!needs_proxy[w]) {
      targets.proxies.push_back(nullptr);
      continue;
    }
    runtime::check_address(workers[w], "--workers");
    const std::size_t colon = workers[w].rfind(':');
    proxies.push_back(std::make_unique<runtime::FaultProxy>(workers[w].substr(0, colon),
                                                            std::stoi(workers[w].substr(colon + 1)), opt.seed + w));
    targets.proxies.push_back(proxies.back().get());
    routed[w] = proxies.back()->address();
  }
  if (!scenario.empty()) {
    runtime::FaultTargets check = targets;
    check.router = nullptr;
    runtime::check_fault_targets(scenario, check);
  }
  runtime::RouterServer server(config, routed, opt);
  targets.router = &server;
  std::unique_ptr<runtime::FaultInjector> injector;
  if (!scenario.empty()) injector = std::make_unique<runtime::FaultInjector>(scenario, targets);
  const TimeUs listening_us = runtime::monotonic_now_us();
  std::printf("twinfer serve listening on %s, routing to %zu worker(s)", server.address().c_str(), workers.size());
  if (spawn) std::printf(" (started by serve)");
  if (server.metrics_port() >= 0) std::printf(", metrics on port %d (/metrics, /healthz)", server.metrics_port());
  if (injector) std::printf(", %zu fault(s) from %s", scenario.faults.size(), faults_start.c_str());
  std::printf("\n");
  std::fflush(stdout);
  if (injector) {
    if (faults_start == "listen") {
      injector->start([listening_us] { return listening_us; });
    } else {
      injector->start([&server] { return server.first_request_us(); });
    }
  }
  const int signal = runtime::wait_for_stop_signal(stop);
  std::fprintf(stderr, "twinfer serve: %s, answering the requests in flight\n", strsignal(signal));
  if (injector) injector->stop();
  server.start_after_restart();  // a router down for a restart when the signal came
  server.shutdown();
  if (supervisor) supervisor->stop();
  for (auto& p : proxies) p->stop();
  std::fprintf(stderr, "twinfer serve: stopped\n");
  return 0;
}

}  // namespace twinfer::cli
