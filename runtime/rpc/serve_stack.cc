#include "runtime/rpc/serve_stack.h"

#include "core/error.h"
#include "runtime/rpc/wire.h"

namespace twinfer::runtime {
namespace {

// The arguments of `twinfer worker` for instance w.
std::vector<std::string> worker_args(const ServeStackOptions& o, int w, int port) {
  std::vector<std::string> out = {"worker", "--config", o.config_path, "--id", std::to_string(w), "--listen",
                                  "127.0.0.1:" + std::to_string(port), "--seed", std::to_string(o.router.seed),
                                  "--device", o.device};
  if (!o.faults.empty()) out.push_back("--allow-faults");  // the fault injector's slowdowns, device errors
  for (const auto& s : o.overrides) {
    out.push_back("--set");
    out.push_back(s);
  }
  // The workers serve as the router does: its certificate and its token.
  const TransportSecurity& security = o.router.security;
  if (security.tls_server()) out.insert(out.end(), {"--tls-cert", security.cert_file, "--tls-key", security.key_file});
  if (!security.token_file.empty()) out.insert(out.end(), {"--token-file", security.token_file});
  return out;
}

}  // namespace

ServeStack::ServeStack(ServeStackOptions options) : options_(std::move(options)) {
  const RunConfig& config = options_.config;
  const std::size_t n = config.cluster.instances.size();
  require_router_server_support(config, options_.spawn_workers);  // before any worker starts
  if (options_.spawn_workers && !options_.workers.empty()) {
    throw Error("--workers and --spawn-workers exclude each other");
  }
  if (!options_.spawn_workers && options_.workers.empty()) {
    throw Error("--workers (one HOST:PORT per instance of the config) or --spawn-workers is required");
  }
  addresses_ = options_.workers;
  check_security(options_.router.security);
  check_address(options_.router.listen, "--listen");  // before any worker starts
  if (options_.spawn_workers) {
    if (options_.config_path.empty()) throw Error("serve: spawned workers need the config's file");
    const TransportSecurity& security = options_.router.security;
    if (security.tls_server() && !security.tls_client()) {
      throw Error("--tls-cert with --spawn-workers needs --tls-ca: the workers serve the router's certificate, "
                  "which the router verifies against that CA");
    }
    if (!security.token.empty() && security.token_file.empty()) throw Error("serve: spawned workers read the token from a file");
    SupervisorOptions s;
    s.binary = options_.binary.empty() ? self_executable() : options_.binary;
    s.restart_after_s = options_.restart_after_s;
    // Elastic pools: the router starts each worker when its pool first needs it.
    if (config.autoscaling.enabled()) s.start_retired.assign(n, true);
    const std::vector<int> ports = free_loopback_ports(static_cast<int>(n));
    for (std::size_t w = 0; w < n; ++w) {
      s.args.push_back(worker_args(options_, static_cast<int>(w), ports[w]));
      addresses_.push_back("127.0.0.1:" + std::to_string(ports[w]));
    }
    supervisor_ = std::make_unique<WorkerSupervisor>(s);
    supervisor_->start();
    options_.router.processes = supervisor_.get();
  }
  // Link faults need the router's connections to those workers to pass through a proxy.
  FaultTargets targets;
  targets.supervisor = supervisor_.get();
  targets.workers = addresses_;
  targets.security = options_.router.security;
  std::vector<std::string> routed = addresses_;
  const std::vector<bool> needs_proxy = workers_needing_proxies(options_.faults, addresses_.size());
  for (std::size_t w = 0; w < addresses_.size(); ++w) {
    if (!needs_proxy[w]) {
      targets.proxies.push_back(nullptr);
      continue;
    }
    check_address(addresses_[w], "--workers");
    const std::size_t colon = addresses_[w].rfind(':');
    proxies_.push_back(std::make_unique<FaultProxy>(addresses_[w].substr(0, colon),
                                                    std::stoi(addresses_[w].substr(colon + 1)), options_.router.seed + w));
    targets.proxies.push_back(proxies_.back().get());
    routed[w] = proxies_.back()->address();
  }
  if (!options_.faults.empty()) check_fault_targets(options_.faults, targets);
  router_ = std::make_unique<RouterServer>(config, routed, options_.router);
  listening_us_ = monotonic_now_us();
  targets.router = router_.get();
  if (!options_.faults.empty()) {
    injector_ = std::make_unique<FaultInjector>(options_.faults, targets, options_.router.log);
  }
}

ServeStack::~ServeStack() { stop(); }

std::vector<std::string> ServeStack::warnings() const {
  std::vector<std::string> out;
  const std::string router = exposure_warning(router_->address(), "the router", options_.router.security);
  if (!router.empty()) out.push_back(router);
  if (options_.config.protection.limits.max_queued_requests == 0) {
    out.push_back("warning: protection.limits.max_queued_requests is 0: the router admits without bound, and a "
                  "burst holds every request it admitted in memory; set a bound to shed the excess at admission "
                  "(rejected \"queue full\")");
  }
  return out;
}

void ServeStack::start_faults() {
  if (!injector_) return;
  if (options_.faults_from_first_request) {
    RouterServer* router = router_.get();
    injector_->start([router] { return router->first_request_us(); });
  } else {
    const TimeUs listening = listening_us_;
    injector_->start([listening] { return listening; });
  }
}

void ServeStack::stop() {
  if (stopped_) return;
  stopped_ = true;
  if (injector_) injector_->stop();
  if (router_) {
    router_->start_after_restart();  // a router down for a restart when the stop came
    router_->shutdown();
  }
  if (supervisor_) supervisor_->stop();
  for (auto& p : proxies_) p->stop();
}

}  // namespace twinfer::runtime
