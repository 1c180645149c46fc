// The router thread of `twinfer run`: replays the trace open loop in real time through protection
// (limits, servable, shedding, admission), the config's router, worker health, retries and
// request timeouts, and applies a fault scenario to its worker threads on the same clock.
//
// Every request ends exactly once, through the Recorder: completed or dropped by its worker,
// rejected before routing, dropped by the router (retries given up, router restarted), or
// timed_out. Faults (see policies/faults/fault_scenario.h):
//   crash       WorkerEngine::crash(); its requests fail "worker W crashed" (a hard call failure)
//               and go to the retry policy; recovery builds a fresh engine (model reloaded) that
//               rejoins when its heartbeats are seen again.
//   slowdown    WorkerEngine::set_slowdown(factor) for the duration.
//   link        each hand-off to or from the worker is delayed (LinkFaults).
//   partition   hand-offs to and from the worker, heartbeats included, wait until it heals; once
//               the heartbeat monitor calls the worker down, its requests fail "worker W
//               unreachable: heartbeat lost" and are retried, and their cancels wait for the heal.
//   router_restart  requests not ended end dropped "router restarted" (their workers cancel
//               them); arrivals until the router is back are rejected "router unavailable".
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/faults/fault_scenario.h"
#include "policies/health/retry_policy.h"
#include "policies/health/worker_health.h"
#include "policies/recorder.h"
#include "policies/run_config.h"
#include "policies/run_policies.h"
#include "runtime/engine/link_faults.h"
#include "runtime/engine/steady_clock.h"
#include "runtime/engine/worker_engine.h"
#include "traces/trace.h"

namespace twinfer::runtime {

// Everything the router borrows; all must outlive it.
struct RouterParts {
  const RunConfig* config = nullptr;
  const Trace* trace = nullptr;  // ids 0..n-1, sorted by arrival
  RunPolicies* policies = nullptr;
  const FaultScenario* faults = nullptr;
  SteadyClock* clock = nullptr;
  Recorder* recorder = nullptr;
  std::mutex* recorder_mu = nullptr;  // the Recorder is shared with the workers' on_batch
  std::uint64_t seed = 1;
  // Builds worker w (model loaded, not started), with the given callbacks. Called once per worker
  // before the run and again for each recovery.
  std::function<std::unique_ptr<WorkerEngine>(int w, WorkerCallbacks callbacks)> make_worker;
  std::vector<int> cores;  // core to pin worker w to, or -1; empty: none pinned
};

class EmbeddedRouter {
 public:
  // Builds the workers. Throws what make_worker throws.
  explicit EmbeddedRouter(RouterParts parts);
  ~EmbeddedRouter();

  // Makes now time zero of the clock, starts the workers, replays the trace, and returns once every
  // request ended. Then the workers are shut down (anything still on them is a stale copy).
  void run();

  std::int64_t steps() const { return steps_.load(); }
  // {"applied": [{"type", "worker", "event", "at_s", "applied_s"}...], "requests_lost_on_crash": n}:
  // each fault's "start" and "end" (at_s planned, applied_s on the run's clock), and for a crash
  // "rejoined" when the recovered worker had loaded its model and started (applied_s only).
  nlohmann::json faults_json() const;
  // [{"at_s", "worker", "from", "to", "why"}...] from WorkerHealth::changes().
  nlohmann::json health_json() const;
  // {"total": retries sent, "requests": requests retried at least once, "completed": of those, completed}
  nlohmann::json retries_json() const;

 private:
  enum class Kind { kSubmit, kCancel, kEnd, kReady };
  // A hand-off between router and worker; kEnd goes to the router, kSubmit and kCancel to the
  // worker. kReady (mail only): a recovered worker finished loading its model.
  struct Message {
    Kind kind = Kind::kSubmit;
    int worker = 0;
    RequestId id = 0;
    int attempt = 0;  // kSubmit: the attempt it carries
    Finished ended;   // kEnd
    TimeUs end_us = 0;
  };
  enum class TimerKind { kDeliver, kRetry, kTimeout };
  struct Timer {
    TimeUs at_us = 0;
    std::uint64_t order = 0;
    TimerKind kind = TimerKind::kRetry;
    RequestId id = 0;
    std::size_t message = 0;  // kDeliver: index in messages_
    bool operator>(const Timer& o) const { return at_us != o.at_us ? at_us > o.at_us : order > o.order; }
  };
  // The router's record of one request.
  struct Flight {
    int worker = -1;         // of the latest attempt
    int attempts = 0;
    bool admitted = false;
    bool on_worker = false;  // the latest attempt was sent and has not failed or ended
    bool ended = false;
    TimeUs sent_us = 0;
  };

  WorkerCallbacks callbacks();
  void start_worker(int w);
  TimeUs next_due_us(TimeUs now) const;
  void fire_due(TimeUs now);
  void take_mail(TimeUs now);

  void arrive(const Request& r, TimeUs now);
  void route(RequestId id, TimeUs now);
  std::vector<WorkerView>& views(TimeUs now);
  void send(Message m, TimeUs now);
  void deliver(const Message& m, TimeUs now);
  void answer(const Message& m, TimeUs now);
  void fail_attempt(RequestId id, const std::string& failure, TimeUs now);
  void cancel_on_worker(RequestId id, TimeUs now);
  void send_cancel(int w, RequestId id, TimeUs now);
  void end_request(RequestId id, Outcome outcome, const std::string& reason, TimeUs now, const Finished* f = nullptr);

  void apply_fault(const FaultEvent& e, TimeUs now);
  void crash(int w, TimeUs now);
  void recover(int w);
  void rejoin(int w, TimeUs now);
  void heal(int w, TimeUs now);
  void restart_router(TimeUs now);
  void heartbeats(TimeUs now);
  void fail_unreachable(TimeUs now);

  RouterParts parts_;
  const std::vector<Request>& requests_;
  const ProtectionOptions& protection_;
  std::vector<FaultEvent> fault_events_;
  std::size_t next_fault_ = 0;
  std::size_t next_arrival_ = 0;

  std::vector<std::unique_ptr<WorkerEngine>> workers_;
  std::vector<bool> alive_;
  std::vector<double> slowdown_;
  std::vector<WorkerView> last_views_;  // as of the latest heartbeat seen
  std::vector<WorkerView> views_;
  std::vector<std::set<RequestId>> on_worker_;  // attempts in flight per worker
  std::vector<std::deque<std::size_t>> held_;      // messages waiting for a partition to heal

  WorkerHealth health_;
  RetryPolicy retry_;
  LinkFaults links_;
  std::vector<Flight> flights_;
  std::vector<Message> messages_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::uint64_t timer_order_ = 0;
  TimeUs next_heartbeat_us_ = 0;
  bool router_down_ = false;
  std::size_t ended_ = 0;
  int queued_ = 0;  // admitted and not ended
  std::int64_t retries_ = 0;
  std::int64_t lost_on_crash_ = 0;
  nlohmann::json applied_ = nlohmann::json::array();

  std::mutex mail_mu_;
  std::condition_variable mail_cv_;
  std::vector<Message> mail_;  // guarded by mail_mu_: ends posted by worker threads
  std::vector<std::unique_ptr<WorkerEngine>> loaded_;  // guarded by mail_mu_: recovered, not yet started
  std::string load_error_;                              // guarded by mail_mu_
  std::vector<std::thread> loaders_;
  std::atomic<std::int64_t> steps_{0};
};

}  // namespace twinfer::runtime
