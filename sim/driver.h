// The simulator's driver: SimGrid activities and timers carrying out the run's policies, with the
// faults of a scenario and the protection of the config (health, retries, timeouts). Internal to
// sim/: sim_driver.cc holds the request path, driver_faults.cc faults and protection.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <random>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>
#include <simgrid/kernel/Timer.hpp>
#include <simgrid/s4u.hpp>

#include "serving/elastic/elastic_cluster.h"
#include "serving/faults/fault_scenario.h"
#include "serving/health/worker_health.h"
#include "serving/protection.h"
#include "serving/recorder.h"
#include "serving/splits/version_choice.h"
#include "policies/registry.h"
#include "policies/worker_state.h"
#include "serving/dispatcher.h"
#include "serving/link_faults.h"
#include "sim/platform.h"
#include "sim/progress.h"
#include "sim/simulator.h"
#include "traces/trace.h"

namespace twinfer::sim {

namespace sg4 = simgrid::s4u;

// What an activity's completion means. Owned by the driver; activities point at them.
struct Pending {
  // kHostLoad: KV blocks from host memory to a worker's GPUs, after which its step runs.
  enum Kind { kToWorker, kToClient, kHostLoad } kind = kToWorker;
  int worker = 0;
  RequestId id = 0;
  TimeUs first_token_us = -1;
  std::uint64_t run_epoch = 0;  // kHostLoad: the worker's run (void once it went down)
  TimeUs step_us = 0;           // kHostLoad: the step's own time, from the loads' arrival
  sg4::ActivityPtr activity;  // kept alive until completed and one more callback has passed
};

struct SimWorker {
  const InstanceSpec* instance = nullptr;
  std::unique_ptr<Batcher> batcher;
  std::unique_ptr<WorkerState> state;
  int in_transit = 0;
  bool busy = false;
  BatchPlan plan;
  TimeUs batch_start_us = 0;
  TimeUs wake_at_us = kNever;
  TimeUs util_updated_us = 0;
  TimeUs busy_us = 0;        // busy time before busy_since_us
  TimeUs busy_since_us = 0;  // when the running run of steps began (while busy)
  bool has_tail = false;  // the running run ends with `plan`, still to be finished
  // The running run's completion is a driver event, not an Exec on the worker's host (SimGrid
  // unlinks a finished Exec from its starter's list of activities: all of the cluster's, so each
  // completion cost time linear in the workers). A crash bumps the epoch: the event finds it
  // changed and does nothing.
  std::uint64_t run_epoch = 0;
  // Faults.
  bool alive = true;
  double slowdown = 1;              // step time multiplier
  // Contention: the cost model's slowdown with every other instance of the host busy, and those
  // instances (workers_ indices).
  double contention = 0;
  std::vector<int> colocated;
  TimeUs busy_until_us = 0;  // when the running run ends (while busy)
  bool device_error = false;        // a device_error fault: the next step fails
  bool failed = false;              // down since a step failed: restarts when the fault ends
  TimeUs silent_since_us = kNever;  // crashed or partitioned: no heartbeat since then
  std::vector<std::function<void()>> held;  // messages waiting for the partition to heal, in order
  std::vector<RequestId> cancel_after_tail;  // cancelled while in the running tail's plan
  // A run of steady decode steps (Batcher::steady_decode_steps) that the worker runs ahead of the
  // router, not yet carried out on `state`: the next starts at run_start_us, step k ends at
  // run_ends[k] for k >= run_next. Whatever reaches the worker first settles it (Driver::settle).
  // Unlike a tail, a run's steps take their KV blocks when carried out, not as they start: only
  // policies that do not read KV use let workers run ahead.
  std::vector<TimeUs> run_ends;
  std::size_t run_next = 0;
  TimeUs run_start_us = 0;
  bool in_run() const { return run_next < run_ends.size(); }
};

// What runs first among a driver's events at one time: timers (faults, arrivals, deliveries,
// wake-ups) before the ends of workers' runs of steps, then the order they were scheduled in.
enum class EventOrder { kTimer = 0, kStepEnd = 1 };

// An entry of the driver's event queue; the action waits in Driver::actions_[action]. Small and
// trivially copyable, so that the heap moves 24 bytes per swap, not a std::function.
struct DriverEvent {
  TimeUs at_us = 0;
  std::uint64_t key = 0;  // EventOrder in the top bit, then the scheduling order
  std::uint32_t action = 0;
};

// The simulator's carrier of the request lifecycle (serving/dispatcher.h): a send is a network
// flow (or a latency timer), a timer a SimGrid timer.
class Driver : private Carrier {
 public:
  Driver(const RunConfig& config, const Trace& trace, const SimRunOptions& options);
  nlohmann::json run();
  const Recorder& recorder() const { return recorder_; }

 private:
  static std::vector<std::string> worker_names(const RunConfig& c);
  TimeUs now_us() const;
  double at_s(TimeUs t_us) const;

  // Carrier.
  ClusterView view() override;
  void send(const Request& r, int worker, int attempt) override;
  void cancel(RequestId id, int worker) override { cancel_on_worker(worker, id); }
  void at(const DispatchTimer& timer) override;

  // The driver's own event queue, ordered by (time, EventOrder, scheduling order): one SimGrid
  // timer stands for its earliest event. Same-time events thus run in a defined order (SimGrid's
  // timer heap breaks ties arbitrarily), and SimGrid keeps one timer instead of one per event.
  void schedule(TimeUs at_us, std::function<void()> fn, EventOrder order = EventOrder::kTimer);
  // Takes the earliest event off the queue and returns its action. REQUIRES: queue_ not empty.
  std::function<void()> pop_event(TimeUs* at_us = nullptr);
  void arm_wakeup();
  void run_due_events();

  // The request path (sim_driver.cc).
  void schedule_arrival(std::size_t i);
  void bury(sg4::ActivityPtr activity);
  void on_arrival(std::size_t i);
  // A message between the router and a worker, across the link faults and then the network.
  void post(Pending::Kind kind, int worker, RequestId id, TimeUs first_token_us, double bytes);
  void transmit(Pending* p, double bytes);
  // Starts `p`'s flow of `bytes` from `from` to `to`; handle(*p) when it arrives.
  void start_flow(Pending* p, sg4::Host* from, sg4::Host* to, double bytes);
  Pending* new_pending();
  void on_completion(const sg4::Activity& a);
  void handle(Pending& p);
  void arrive_at_worker(const Pending& p);
  void finish_request(const Pending& p);
  void update_utilization(int wi);
  void refresh_view(int wi);
  void end_on_worker(int wi, std::vector<Finished>& ended, TimeUs at_us);
  void record_batch(int wi, const BatchPlan& plan, TimeUs start_us, TimeUs end_us);
  // A step predicted to take `predicted_us` on worker `wi` as it starts now: its faults and
  // co-located instances slow it down.
  TimeUs step_time(int wi, TimeUs predicted_us) const;
  // With a host tier: takes the copies worker `wi`'s state asks for and returns how many blocks its
  // next step loads from host memory. The stores overlap later steps (the link's other direction)
  // and take no step's time.
  std::int64_t take_host_loads(int wi);
  // The step of `plan` on worker `wi`, starting at `t` with `blocks` blocks to load first and taking
  // `step_us` once they are there: a flow over the worker's host link, then the step's end event.
  void load_then_step(int wi, BatchPlan plan, TimeUs t, std::int64_t blocks, TimeUs step_us);
  // Plans a run of steady decode steps from t (at most `steps`, stopping at the first that ends at
  // or after `stop`) into workers_[wi].run_ends from run_start_us = t.
  void plan_run(int wi, TimeUs t, std::int64_t steps, TimeUs stop);
  // Carries out the next `steps` steps of the worker's run.
  void apply_run(int wi, std::size_t steps);
  // Something reaches worker `wi` now: the steps of its run that ended before now are carried out,
  // and the one under way ends the run, as the tail of runs planned step by step does.
  void settle(int wi);
  void schedule_run_end(int wi, TimeUs at_us);
  void kick(int wi);
  void idle(int wi, TimeUs wake_at_us);
  void on_wake(int wi, TimeUs at);
  void on_batch_done(int wi);
  void left_worker(int wi, RequestId id);

  // Elastic pools (driver_elastic.cc).
  void set_busy(int wi, bool busy);
  void schedule_decision(TimeUs at_us);
  void on_decision();
  void apply_changes(const std::vector<LifecycleChange>& changes);
  void on_cold_start_done(int wi, int epoch);
  // A draining worker that holds nothing any more stops.
  void check_drained(int wi);

  // Faults and protection (driver_faults.cc).
  void schedule_faults();
  void on_fault(const FaultEvent& e);
  void crash(int wi);
  void device_failed(int wi);
  void go_down(int wi, const std::string& failure);
  void recover(int wi);
  void heal(int wi);
  void cancel_on_worker(int wi, RequestId id);
  void apply_cancels(int wi);
  void refresh_health();
  void schedule_health_check();
  void on_health_check();
  // Earliest time at which something outside a worker may reach it (faults, retries, timeouts).
  TimeUs next_external_us();
  nlohmann::json faults_summary() const;

  static constexpr double kUtilizationTauUs = 1e6;

  const RunConfig& config_;
  const std::vector<Request>& requests_;
  SimRunOptions options_;
  Recorder recorder_;
  std::vector<TimeUs> predicted_work_us_;
  Progress progress_;
  std::unique_ptr<CostModel> cost_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<Admission> shed_;
  std::unique_ptr<Router> router_;
  std::vector<SimWorker> workers_;
  std::vector<WorkerView> views_;
  // The workers' KV events, handed to the router as they happen (for a router that reads them).
  struct KvEvents : KvEventSource {
    explicit KvEvents(Driver* d) : driver(d) {}
    void take(int worker, std::vector<KvEvent>& out) override;
    Driver* driver;
  };
  KvEvents kv_events_{this};
  KvTransfers transfers_;  // take_host_loads()'s, reused
  ViewChanges view_changes_;  // which of views_ changed since the router last looked: touch() at every write
  std::unique_ptr<ElasticCluster> elastic_;
  std::unique_ptr<VersionChoice> versions_;
  enum class Network { kFlow, kLatency, kNone } network_ = Network::kFlow;
  Platform platform_;
  double start_clock_s_ = 0;
  TimeUs next_arrival_us_ = kNever;  // no new request can reach any worker earlier
  std::int64_t events_ = 0;
  bool run_ahead_ = false;  // workers may run ahead of the router (sim.fast_forward and ViewUse)
  std::vector<DriverEvent> queue_;  // a heap: the earliest first
  std::uint64_t queue_seq_ = 0;
  std::vector<std::function<void()>> actions_;  // of the queued events, by DriverEvent::action
  std::vector<std::uint32_t> free_actions_;
  simgrid::kernel::timer::Timer* wakeup_ = nullptr;  // the SimGrid timer at wakeup_at_us_
  TimeUs wakeup_at_us_ = kNever;
  bool running_events_ = false;
  // While no flow is under way (always, without a flow network) the driver runs its queue itself,
  // on its own clock: the same order and times as behind SimGrid's timer, without SimGrid's step
  // per event. A flow's start brings SimGrid's clock to the driver's (transmit()).
  bool own_clock_ = true;
  int flows_ = 0;  // flows under way
  TimeUs clock_us_ = 0;
  std::deque<Pending> pool_;
  std::vector<Pending*> free_;
  std::vector<sg4::ActivityPtr> graveyard_;
  // Completed, response on the way; keyed by done_key(id, worker): an abandoned attempt's response
  // may still travel while a retry of the same request completes elsewhere.
  std::unordered_map<std::uint64_t, Sequence> pending_done_;
  std::uint64_t done_key(RequestId id, int wi) const { return id * workers_.size() + std::uint64_t(wi); }

  // Protection.
  const ProtectionOptions& protection_;
  WorkerHealth health_;
  bool track_health_ = false;     // health can leave kUp in this run (faults or slow-call breakers)
  TimeUs health_check_at_us_ = kNever;
  std::unique_ptr<Dispatcher> dispatcher_;

  // Faults.
  std::vector<FaultEvent> fault_events_;
  std::size_t next_fault_ = 0;
  LinkFaults links_;
  std::size_t health_changes_seen_ = 0;
};

}  // namespace twinfer::sim
