// `twinfer worker`: one model instance of a config served over gRPC (service twinfer.rpc.Worker).
// The instance's batcher and backend are built exactly as the embedded runtime builds them, and a
// WorkerEngine thread runs them; Submit calls are asynchronous (callback API), each answered from
// the engine when its request ends, so that many requests are in flight without a thread each.
// A Submit call that its client cancels (the router's time limit, a router restart, a client
// hanging up) takes its request off the engine (WorkerEngine::cancel: it stops using the device and
// its KV cache is freed). Requests with negative token counts or times are answered rejected
// "bad request: ..." without reaching the engine. InjectFault (refused unless
// the worker was started with allow_faults) sets the engine's slowdown or device error. A failed
// engine (WorkerCallbacks::on_failed) is reported by State (failure) and by every answer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/rpc/transport_security.h"
#include "serving/run_config.h"

namespace twinfer::runtime {

struct WorkerServerOptions {
  int index = 0;               // instance of config.cluster.instances
  std::string device = "cpu";  // "cpu" or "cuda:N"
  std::uint64_t seed = 1;      // model weights and randomized batchers, as `twinfer run --seed`
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0 picks a free one (see port())
  double drain_timeout_s = 120;        // shutdown(): longest wait for accepted requests
  bool allow_faults = false;           // InjectFault is refused unless set (a fault scenario's target)
  TransportSecurity security;          // TLS (cert_file, key_file) and the token its callers must carry
};

// Thread safety: port(), address() and shutdown() may be called from any thread.
class WorkerServer {
 public:
  // Builds the instance, starts its engine and listens. Throws twinfer::Error on a bad index, a
  // model the backend cannot build, a bad device, or an address it cannot listen on.
  WorkerServer(const RunConfig& config, const WorkerServerOptions& options);
  ~WorkerServer();  // shutdown()

  int port() const;
  std::string address() const;  // host:port actually bound
  const std::string& name() const;  // the instance's name

  // Why the engine failed (a step error that no one request answers for), once every request it
  // held is answered: those it was running DROPPED, the others RETURNED (InferResult.worker_failure
  // says why), as is every later Submit. Empty while it has not failed. A failed worker is of no
  // more use: `twinfer worker` exits then, for its supervisor to start it afresh.
  std::string failure() const;
  // Stops accepting calls, answers every accepted request once it ends (cancelling those still
  // running after drain_timeout_s), then stops the engine. Idempotent.
  void shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace twinfer::runtime
