// `twinfer serve` as one library object: the router process's whole stack (supervised worker
// processes, fault proxies, the gRPC router, the fault injector), assembled the same way for the
// command line, tests and bindings.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "serving/faults/fault_scenario.h"
#include "serving/run_config.h"
#include "runtime/rpc/fault_proxy.h"
#include "runtime/rpc/router_server.h"
#include "runtime/rpc/serve_faults.h"
#include "runtime/rpc/worker_supervisor.h"

namespace twinfer::runtime {

struct ServeStackOptions {
  RunConfig config;
  // Spawned workers load the config from its file, with the same overrides (`--set key=value`).
  std::string config_path;
  std::vector<std::string> overrides;
  // Workers started elsewhere: one address per instance, in order. Empty with spawn_workers.
  std::vector<std::string> workers;
  bool spawn_workers = false;       // start one `twinfer worker` process per instance and supervise them
  std::string binary;               // the twinfer executable the workers run; empty: this process's
  std::string device = "cpu";       // spawned workers' backend
  double restart_after_s = 1;       // delay before restarting a spawned worker that exited
  FaultScenario faults;             // played once start_faults() is called
  bool faults_from_first_request = false;  // else from when the router listens
  RouterServerOptions router;       // router.processes is set by the stack when it spawns workers
};

// Thread safety: every method may be called from any thread.
class ServeStack {
 public:
  // Starts the workers (when spawning), the proxies that link faults need and the router, which
  // waits for its workers and listens. Throws twinfer::Error on a config or scenario the router
  // cannot carry out (checked before any worker starts), or an address it cannot use.
  explicit ServeStack(ServeStackOptions options);
  ~ServeStack();  // stop()

  RouterServer& router() { return *router_; }
  std::size_t workers() const { return addresses_.size(); }
  bool spawned() const { return supervisor_ != nullptr; }
  bool has_faults() const { return injector_ != nullptr; }
  const FaultScenario& faults() const { return options_.faults; }
  WorkerSupervisor* supervisor() { return supervisor_.get(); }
  // What an operator should know before trusting this stack: a router or metrics address beyond
  // this host (exposure_warning()), a router queue without bound.
  std::vector<std::string> warnings() const;

  // Starts playing the fault scenario from its zero (the router's listening moment or its first
  // request). Nothing without faults.
  void start_faults();
  // Stops the faults, answers the requests in flight (a router down for a restart comes back for
  // that), stops the router, the workers it started and the proxies. Idempotent.
  void stop();

 private:
  ServeStackOptions options_;
  std::vector<std::string> addresses_;  // the workers' own addresses
  std::unique_ptr<WorkerSupervisor> supervisor_;
  std::vector<std::unique_ptr<FaultProxy>> proxies_;
  std::unique_ptr<RouterServer> router_;
  std::unique_ptr<FaultInjector> injector_;
  TimeUs listening_us_ = kNever;
  bool stopped_ = false;
};

}  // namespace twinfer::runtime
