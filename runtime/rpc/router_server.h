// `twinfer serve`: the router process (service twinfer.rpc.Router). Each Infer runs the config's
// admission and router (the same policy objects as the simulator, from the registries) on a
// ClusterView of the workers' latest polled states, forwards the request to the chosen worker
// asynchronously, and answers with the worker's result. Rejections are answered at once; a
// request whose worker fails ends as dropped, "worker W unreachable: <gRPC message>".
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "policies/run_config.h"

namespace twinfer::runtime {

struct RouterServerOptions {
  std::uint64_t seed = 1;              // randomized policies, as `twinfer run --seed`
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 picks a free one
  int metrics_port = -1;               // HTTP /metrics and /healthz on listen's host; -1: none, 0: any
  int poll_interval_ms = 5;
  int state_timeout_ms = 2000;         // a worker whose State takes longer is marked down
  int connect_timeout_ms = 10000;      // startup: wait this long for every worker's first answer
  int forward_timeout_ms = 600000;     // longest a request may stay on a worker
  double drain_timeout_s = 120;        // shutdown(): longest wait for requests in flight
  bool log = true;                     // report worker health changes on stderr
};

// Thread safety: every method may be called from any thread.
class RouterServer {
 public:
  // `workers[i]` is the address of instance i of `config` (one per instance, in order). Waits for
  // the workers as LinkOptions::connect_timeout_ms says, then listens. Throws twinfer::Error on a
  // worker count that does not match the config, bad policies or an address it cannot listen on.
  RouterServer(const RunConfig& config, const std::vector<std::string>& workers, const RouterServerOptions& options);
  ~RouterServer();  // shutdown()

  int port() const;
  std::string address() const;
  int metrics_port() const;  // -1 without a metrics server

  // The /metrics page.
  std::string metrics_text() const;

  // Stops accepting calls, waits for the requests in flight (up to drain_timeout_s), then stops
  // polling the workers. Idempotent.
  void shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace twinfer::runtime
