// The router thread of `twinfer run`: replays the trace open loop in real time through protection
// (limits, servable, shedding, admission), the config's router, worker health, retries and
// request timeouts, and applies a fault scenario to its worker threads on the same clock.
//
// Every request ends exactly once, through the Recorder: completed or dropped by its worker,
// rejected before routing, dropped by the router (retries given up, router restarted), or
// timed_out. Faults (see serving/faults/fault_scenario.h):
//   crash       WorkerEngine::crash(); its requests fail "worker NAME crashed" (a hard call failure)
//               and go to the retry policy; recovery builds a fresh engine (model reloaded) that
//               rejoins when its heartbeats are seen again.
//   slowdown    WorkerEngine::set_slowdown(factor) for the duration.
//   link        each hand-off to or from the worker is delayed (LinkFaults).
//   partition   hand-offs to and from the worker, heartbeats included, wait until it heals; once
//               the heartbeat monitor calls the worker down, its requests fail "worker NAME
//               unreachable: heartbeat lost" and are retried, and their cancels wait for the heal.
//   router_restart  requests not ended end dropped "router restarted" (their workers cancel
//               them); arrivals until the router is back are rejected "router unavailable".
//   device_error  WorkerEngine::set_device_error(): its next step fails the worker (on_failed),
//               whose running sequences end dropped "worker NAME failed: device error (injected)"
//               and whose other requests fail with those words (retried); it restarts (model
//               reloaded) when the fault ends. A worker that fails on its own restarts at once.
//
// Elastic pools and model versions (serving/elastic/elastic_cluster.h, policies/splits/
// version_choice.h), as in the simulator:
//   - A request for a model family is sent to the version VersionChoice picks at its arrival
//     (before admission; the split's schedule is read at the trace's arrival time); its retries
//     keep that version.
//   - Workers that start stopped are not built: no engine, no thread, no model in memory. Every
//     interval_us() of the run's clock the router calls ElasticCluster::decide(), dated at its due
//     time (a late router thread does not skew the autoscalers' windows). A started worker
//     loads its model on a loader thread (a real cold start) and becomes ready no earlier than the
//     config's modeled cold start after the decision, so that simulated and real runs agree; when
//     the real load takes longer, it becomes ready once loaded: the runtime never pretends to be
//     faster than the real load. A start cancelled meanwhile discards the loaded engine.
//   - A draining worker takes no new request (routers only pick ready workers); once it holds
//     nothing (no attempt in flight to or on it, its engine idle, not partitioned) it is stopped:
//     its thread joined and its engine, model included, destroyed.
//   - Faults on workers that are not running (stopped or starting) are no-ops: a crash finds
//     nothing to crash and its recovery nothing to restart. A crashed worker that drains is stopped
//     at once (the crash already failed its requests) and its pending recovery is dropped. Workers
//     that are not running are not monitored: the router beats their heartbeats for them, so that
//     they are not called down for silence while the lifecycle keeps requests off them.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "serving/elastic/elastic_cluster.h"
#include "serving/faults/fault_scenario.h"
#include "serving/health/worker_health.h"
#include "serving/recorder.h"
#include "serving/run_config.h"
#include "serving/run_policies.h"
#include "serving/splits/version_choice.h"
#include "serving/link_faults.h"
#include "runtime/engine/steady_clock.h"
#include "runtime/engine/worker_engine.h"
#include "serving/dispatcher.h"
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
  // Builds worker w (model loaded, not started), with the given callbacks. Called for each worker
  // ready at time 0 before the run, and from loader threads for each cold start and recovery.
  std::function<std::unique_ptr<WorkerEngine>(int w, WorkerCallbacks callbacks)> make_worker;
  std::vector<int> cores;  // core to pin worker w to, or -1; empty: none pinned
};

// The embedded carrier of the request lifecycle (serving/dispatcher.h): a send is a hand-off to a
// worker thread across the link model, a timer an entry of the router thread's heap.
class EmbeddedRouter : private Carrier {
 public:
  // Builds the workers ready at time 0. Throws what make_worker throws, and twinfer::Error on a
  // bad autoscaling or traffic split config.
  explicit EmbeddedRouter(RouterParts parts);
  ~EmbeddedRouter();

  // Makes now time zero of the clock, starts the workers, replays the trace, and returns once every
  // request ended. Then the workers are shut down (anything still on them is a stale copy).
  void run();

  std::int64_t steps() const { return steps_.load(); }
  // The first error a policy threw on a worker thread ("worker NAME: ..."), or "". The worker's
  // requests ended dropped; the run is to raise it once its outputs are written.
  std::string policy_error() const;
  // summary.json's "faults" section: fault_report() plus "applied": [{"type", "worker", "event",
  // "at_s", "applied_s"}...] (each fault's "start" and "end", at_s planned, applied_s on the run's
  // clock, and for a crash "rejoined" when the recovered worker had loaded its model and started)
  // and "requests_lost_on_crash": n.
  nlohmann::json faults_json(const FaultScenario& scenario, const std::vector<std::string>& worker_names) const;
  const std::vector<HealthChange>& health_changes() const { return health_.changes(); }
  // summary.json's "cost" section, plus "autoscaling" when the config autoscales, as the simulator
  // writes them; `completed` requests set the cost per million. REQUIRES: run() returned.
  nlohmann::json elastic_json(std::int64_t completed) const;
  // Every model load of the run: [{"worker", "why"}] for the workers built before time 0 ("why":
  // "initial"), then {"worker", "why": "cold_start" | "recovery", "begun_s", "loaded_s"} on the
  // run's clock; a cold start also has "ready_s" when the worker became ready, else "discarded":
  // true (cancelled meanwhile, or the run ended first).
  nlohmann::json loads_json() const;

 private:
  enum class Kind { kSubmit, kCancel, kEnd, kFailed, kReady };
  // A hand-off between router and worker; kEnd and kFailed (the worker failed: WorkerCallbacks::
  // on_failed) go to the router, kSubmit and kCancel to the worker. kReady (mail only): a loader
  // thread finished loading a worker's model (its engine waits in loaded_).
  static LinkDirection direction_of(Kind kind) {
    return kind == Kind::kEnd || kind == Kind::kFailed ? LinkDirection::kToRouter : LinkDirection::kToWorker;
  }
  struct Message {
    Kind kind = Kind::kSubmit;
    int worker = 0;
    RequestId id = 0;
    int attempt = 0;  // kSubmit: the attempt it carries
    int epoch = -1;   // kReady: as Loaded::epoch
    Finished ended;   // kEnd; kFailed: ended.reason is the failure
    TimeUs end_us = 0;
  };
  // kDispatch: the Dispatcher's; kColdStart: a started worker's modeled cold start has elapsed.
  enum class TimerKind { kDeliver, kDispatch, kColdStart };
  struct Timer {
    TimeUs at_us = 0;
    std::uint64_t order = 0;
    TimerKind kind = TimerKind::kDispatch;
    std::size_t message = 0;  // kDeliver: index in messages_
    DispatchTimer dispatch;   // kDispatch
    int worker = -1;          // kColdStart
    int epoch = 0;            // kColdStart: ElasticCluster::start_epoch() of that start
    bool operator>(const Timer& o) const { return at_us != o.at_us ? at_us > o.at_us : order > o.order; }
  };
  // An engine built by a loader thread, not started. epoch < 0: a recovery; else a cold start.
  struct Loaded {
    int worker = 0;
    int epoch = -1;
    std::size_t record = 0;  // in loads_
    TimeUs loaded_us = 0;
    std::unique_ptr<WorkerEngine> engine;
  };
  struct LoadRecord {
    int worker = 0;
    std::string why;
    TimeUs begun_us = -1;   // -1: before the run
    TimeUs loaded_us = -1;
    TimeUs ready_us = -1;   // cold starts
  };
  WorkerCallbacks callbacks();
  void start_worker(int w);
  TimeUs next_due_us(TimeUs now) const;
  void fire_due(TimeUs now);
  void take_mail(TimeUs now);

  // Carrier.
  ClusterView view() override { return cluster_view(now_); }
  // The workers' views at `now`, with their KV events when the router reads them.
  ClusterView cluster_view(TimeUs now);
  void send(const Request& r, int worker, int attempt) override;
  void cancel(RequestId id, int worker) override;
  void at(const DispatchTimer& timer) override;

  std::vector<WorkerView>& views(TimeUs now);
  void post(Message m, TimeUs now);
  void deliver(const Message& m, TimeUs now);

  void apply_fault(const FaultEvent& e, TimeUs now);
  void crash(int w, TimeUs now);
  void failed(int w, const std::string& failure, TimeUs now);
  void recover(int w, TimeUs now);
  void rejoin(int w, std::unique_ptr<WorkerEngine> engine, TimeUs now);
  void heal(int w, TimeUs now);
  void restart_router(TimeUs now);
  void heartbeats(TimeUs now);
  void fail_unreachable(TimeUs now);

  WorkerView idle_view(int w) const;
  const std::string& worker_name(int w) const;  // its instance's name
  Lifecycle lifecycle(int w) const { return elastic_->lifecycle(w); }
  void load(int w, int epoch, TimeUs now);
  void take_loaded(const Message& m, TimeUs now);
  void cold_start_loaded(Loaded loaded, TimeUs now);
  void become_ready(int w, int epoch, TimeUs now);
  void decide(TimeUs now);
  void apply_change(const LifecycleChange& change, TimeUs decided_us, TimeUs now);
  void stop_drained(TimeUs now);

  RouterParts parts_;
  const std::vector<Request>& requests_;
  const ProtectionOptions& protection_;
  std::vector<FaultEvent> fault_events_;
  std::size_t next_fault_ = 0;
  std::size_t next_arrival_ = 0;

  std::unique_ptr<ElasticCluster> elastic_;  // calls under *parts_.recorder_mu (it writes the recorder)
  std::unique_ptr<VersionChoice> versions_;
  std::vector<TimeUs> ready_since_us_;  // per worker: when a cold start made it ready; -1: from the start
  std::vector<KvCapacity> kv_capacity_;      // per worker, for the views of workers without an engine

  // Per worker: its engine, null while stopped (or starting, until loaded); alive_: the engine
  // runs (started, not crashed); crashed_: crashed and not yet recovered or stopped.
  std::vector<std::unique_ptr<WorkerEngine>> workers_;
  std::vector<bool> alive_;
  std::vector<bool> crashed_;
  std::vector<double> slowdown_;
  std::vector<bool> device_error_;  // a device_error fault lasts
  std::vector<WorkerView> last_views_;  // as of the latest heartbeat seen
  std::vector<WorkerView> views_;
  std::vector<std::deque<std::size_t>> held_;      // messages waiting for a partition to heal
  // The workers' KV events, for a router that reads them: each running, reachable engine's log,
  // followed with a cursor per worker (a recovered worker's new engine is a new log: the router
  // starts that worker over).
  struct KvEvents : KvEventSource {
    explicit KvEvents(EmbeddedRouter* r) : router(r) {}
    void take(int worker, std::vector<KvEvent>& out) override;
    EmbeddedRouter* router;
    std::vector<KvEventCursor> cursors;
  };
  KvEvents kv_events_{this};

  WorkerHealth health_;
  LinkFaults links_;
  std::unique_ptr<Dispatcher> dispatcher_;
  TimeUs now_ = 0;  // the router thread's clock at the event it handles
  std::vector<Message> messages_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::uint64_t timer_order_ = 0;
  TimeUs next_heartbeat_us_ = 0;
  TimeUs next_decision_us_ = kNever;
  TimeUs elastic_dated_us_ = 0;           // the latest time a lifecycle change was dated
  std::vector<TimeUs> start_decided_us_;  // per worker: when its latest cold start was decided
  std::vector<std::size_t> start_record_; // per worker: its latest cold start in loads_
  std::vector<LoadRecord> loads_;
  std::int64_t lost_on_crash_ = 0;
  nlohmann::json applied_ = nlohmann::json::array();

  mutable std::mutex mail_mu_;
  std::condition_variable mail_cv_;
  std::vector<Message> mail_;  // guarded by mail_mu_: ends posted by worker threads
  std::vector<Loaded> loaded_;  // guarded by mail_mu_: built by loaders, not yet taken by the router
  std::string load_error_;      // guarded by mail_mu_
  std::string policy_error_;    // guarded by mail_mu_
  std::vector<TimeUs> busy_us_; // guarded by *parts_.recorder_mu: per worker, summed batch durations
  std::vector<std::thread> loaders_;
  std::atomic<std::int64_t> steps_{0};
};

}  // namespace twinfer::runtime
