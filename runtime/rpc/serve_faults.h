// `twinfer serve --faults F`: plays a fault scenario (serving/faults/fault_scenario.h) against the
// real processes, in real time from a start moment the caller gives:
//   crash          SIGKILL to the worker's process (WorkerSupervisor::crash); recovery starts it again
//   slowdown       the worker's InjectFault rpc (every engine step takes `factor` times as long)
//   link           the worker's FaultProxy adds latency and loss to every chunk both ways
//   partition      the worker's FaultProxy stops forwarding both ways (connections stay open)
//   router_restart RouterServer::stop_for_restart(), then start_after_restart() after the downtime
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "serving/faults/fault_scenario.h"
#include "runtime/rpc/fault_proxy.h"
#include "runtime/rpc/router_server.h"
#include "runtime/rpc/transport_security.h"
#include "runtime/rpc/worker_supervisor.h"

namespace twinfer::runtime {

struct FaultTargets {
  RouterServer* router = nullptr;
  WorkerSupervisor* supervisor = nullptr;   // null: workers started elsewhere (no crash faults)
  std::vector<std::string> workers;         // the workers' own addresses, for InjectFault
  std::vector<FaultProxy*> proxies;         // per worker; null where the scenario has no link faults
  TransportSecurity security;               // how InjectFault reaches the workers
};

// Which workers need a FaultProxy: those with link or partition faults.
std::vector<bool> workers_needing_proxies(const FaultScenario& scenario, std::size_t workers);

// Throws twinfer::Error when the scenario needs what the targets lack ("crash faults need
// --spawn-workers", a link fault on a worker without a proxy).
void check_fault_targets(const FaultScenario& scenario, const FaultTargets& targets);

// Thread safety: every method may be called from any thread.
class FaultInjector {
 public:
  FaultInjector(FaultScenario scenario, FaultTargets targets, bool log = true);
  ~FaultInjector();  // stop()

  // Plays the events on a thread of its own: each at zero_us() + its time, where zero_us returns
  // the start moment on the monotonic clock once known (kNever until then; polled).
  void start(std::function<TimeUs()> zero_us);
  // Stops playing (faults in effect stay). Idempotent.
  void stop();
  // Events applied so far, e.g. "12.003 s: crash worker 1 starts".
  std::vector<std::string> applied() const;

 private:
  void loop(std::function<TimeUs()> zero_us);
  void apply(const FaultEvent& event);

  FaultScenario scenario_;
  FaultTargets targets_;
  bool log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;            // guarded by mu_
  std::vector<std::string> applied_; // guarded by mu_
  std::thread thread_;
};

}  // namespace twinfer::runtime
