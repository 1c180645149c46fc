// `twinfer serve`: the router process (service twinfer.rpc.Router). Each Infer passes the
// protection checks and the config's admission (admit_request: limits, servable, shed, admission),
// is routed by the config's router (the same policy objects as the simulator, from the registries)
// on a ClusterView of the workers' latest polled states and health, and is forwarded to the chosen
// worker asynchronously; the router answers with the worker's result.
//
// Every request is answered exactly once: completed, rejected (at once, with the check that
// refused it), dropped (its forward failed and the RetryPolicy gave up, or the router restarted) or
// timed_out (protection.request_timeout_ms after its arrival; the forwarded call is cancelled, and
// the worker drops the request). A failed forward is retried on another worker after the policy's
// backoff. The lifecycle is serving/dispatcher.h's, as in `twinfer sim` and `twinfer run`.
//
// The run's clock starts at the first request: its run_zero_us (a replay's time zero) when it
// gives one, else its arrival. Traffic splits read their schedules on that clock, and elastic
// pools decide every autoscaling.interval_s of it, as in the simulator:
//   - a worker that starts stopped has no process until its pool scales up: WorkerProcesses starts
//     it (a real process start and model load), and it becomes ready once it answers and the
//     config's modeled cold start has passed since the decision;
//   - a draining worker takes no new request and is stopped (its process ends) once no request is
//     in flight to it; stopped and starting workers are not monitored for heartbeats.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/rpc/transport_security.h"
#include "serving/run_config.h"
#include "core/time.h"

namespace twinfer::runtime {

// Starts and stops the worker processes of elastic pools (`serve --spawn-workers`: its supervisor).
class WorkerProcesses {
 public:
  virtual ~WorkerProcesses() = default;
  // Start its process (it loads its model); `why` goes to the log ("its pool scaled up").
  virtual void launch(int worker, const std::string& why) = 0;
  virtual void retire(int worker) = 0;  // stop its process; no restart until launched again
};

struct RouterServerOptions {
  std::uint64_t seed = 1;              // randomized policies and retry jitter, as `twinfer run --seed`
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 picks a free one
  int metrics_port = -1;               // HTTP /metrics and /healthz on listen's host; -1: none, 0: any
  int poll_interval_ms = 5;
  int state_timeout_ms = 2000;         // deadline of one State poll (a missing answer misses heartbeats)
  int connect_timeout_ms = 10000;      // startup: wait this long for every worker's first answer
  int forward_timeout_ms = 600000;     // longest one forwarded call may take
  double drain_timeout_s = 120;        // shutdown(): longest wait for requests in flight
  bool log = true;                     // report worker health changes on stderr
  int max_calls_per_connection = 2048; // Infer calls open at once per client connection; more wait
                                       // in their client (HTTP/2 flow control)
  // Elastic pools: who starts and stops worker processes; must outlive the server. Null: the
  // workers run elsewhere, and a config with autoscaling is refused.
  WorkerProcesses* processes = nullptr;
  // TLS of its own port and HTTPS of /metrics (cert_file, key_file), TLS to its workers (ca_file),
  // and the token its callers, /metrics included, must carry and that it gives its workers.
  TransportSecurity security;
};

// Throws twinfer::Error naming the config key when `config` asks for what this router cannot do:
// elastic pools ("autoscaling") without `can_start_workers` (serve --workers: the workers run
// elsewhere). Never served as if the key were absent.
void require_router_server_support(const RunConfig& config, bool can_start_workers);

// Thread safety: every method may be called from any thread.
class RouterServer {
 public:
  // `workers[i]` is the address of instance i of `config` (one per instance, in order). Waits for
  // the workers as LinkOptions::connect_timeout_ms says, then listens. Its gRPC maximum receive
  // message size is config.protection.limits.max_request_bytes. Throws twinfer::Error on a config
  // it does not support (require_router_server_support()), a worker count that does not match the
  // config, bad policies or an address it cannot listen on. With elastic pools, the workers that
  // start stopped are not waited for; options.processes starts them when their pools scale up.
  RouterServer(const RunConfig& config, const std::vector<std::string>& workers, const RouterServerOptions& options);
  ~RouterServer();  // shutdown()

  int port() const;
  std::string address() const;
  int metrics_port() const;  // -1 without a metrics server

  // Monotonic time (runtime/rpc/wire.h) at which the first Infer call arrived; kNever before.
  TimeUs first_request_us() const;

  // The /metrics page.
  std::string metrics_text() const;

  // A router restart, in two halves. stop_for_restart(): every request in flight ends dropped
  // "router restarted" (its forwarded call is cancelled, so its worker drops it), the gRPC server
  // stops (clients then fail to connect: UNAVAILABLE), and the policies, retry budget and health
  // are forgotten. start_after_restart(): a new server on the same port with fresh policies.
  // Both are no-ops when already in that state. Throws twinfer::Error when the port cannot be bound
  // again.
  void stop_for_restart();
  void start_after_restart();

  // Stops accepting calls, waits for the requests in flight (up to drain_timeout_s), then stops
  // polling the workers. Idempotent.
  void shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace twinfer::runtime
