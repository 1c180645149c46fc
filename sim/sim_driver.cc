#include "sim/sim_driver.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <memory>

#include <simgrid/kernel/Timer.hpp>
#include <simgrid/s4u.hpp>
#include <xbt/log.h>

#include "policies/error.h"
#include "policies/recorder.h"
#include "policies/registry.h"
#include "policies/run_policies.h"
#include "policies/worker_state.h"
#include "sim/platform.h"
#include "sim/progress.h"

namespace twinfer::sim {
namespace sg4 = simgrid::s4u;
using simgrid::kernel::timer::Timer;

namespace {

// Peak resident memory of this process so far (the simulation runs in its own child).
double max_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// What an activity's completion means. Owned by the driver; activities point at them.
struct Pending {
  enum Kind { kBatchDone, kToWorker, kToClient } kind = kBatchDone;
  int worker = 0;
  RequestId id = 0;
  TimeUs first_token_us = -1;
  sg4::ActivityPtr activity;  // kept alive until completed and one more callback has passed
};

struct Worker {
  const InstanceSpec* instance = nullptr;
  std::unique_ptr<Batcher> batcher;
  std::unique_ptr<WorkerState> state;
  int in_transit = 0;
  bool busy = false;
  BatchPlan plan;
  TimeUs batch_start_us = 0;
  TimeUs wake_at_us = kNever;
  TimeUs util_updated_us = 0;
  bool has_tail = false;  // the running activity ends with `plan`, still to be finished
  Pending done;  // the running batch's completion
};

class Driver {
 public:
  Driver(const RunConfig& config, const Trace& trace, const SimRunOptions& options)
      : config_(config), requests_(trace.requests), options_(options),
        recorder_(trace.requests, worker_names(config), config.workload.slo, config.sim.timeline),
        predicted_work_us_(trace.requests.size(), 0), progress_(options.progress, trace.requests.size()) {
    RunPolicies policies = make_run_policies(config, options.seed);
    cost_ = std::move(policies.cost);
    admission_ = std::move(policies.admission);
    router_ = std::move(policies.router);
    for (const auto& inst : config.cluster.instances) {
      Worker w;
      w.instance = &inst;
      w.batcher = make_worker_batcher(config, inst, *cost_, options.seed);
      w.state = std::make_unique<WorkerState>(w.batcher->kv_capacity());
      w.done.kind = Pending::kBatchDone;
      w.done.worker = inst.index;
      workers_.push_back(std::move(w));
      WorkerView v;
      v.index = inst.index;
      v.instance = &inst;
      v.kv_blocks_total = workers_.back().state->kv().total();
      v.kv_blocks_free = v.kv_blocks_total;
      views_.push_back(v);
    }
    network_ = config.sim.network == "flow" ? Network::kFlow
               : config.sim.network == "latency" ? Network::kLatency
                                                 : Network::kNone;
  }

  nlohmann::json run() {
    sg4::Engine& engine = *sg4::Engine::get_instance();
    platform_ = build_platform(config_.cluster);
    start_clock_s_ = sg4::Engine::get_clock();
    sg4::Activity::on_completion_cb([this](const sg4::Activity& a) { on_completion(a); });
    auto wall_start = std::chrono::steady_clock::now();
    if (!requests_.empty()) {
      next_arrival_us_ = requests_[0].arrival_us;
      schedule_arrival(0);
    }
    engine.run();
    double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
    progress_.finish();
    graveyard_.clear();
    recorder_.check_all_ended();

    nlohmann::json summary = recorder_.summary();
    summary["sim"] = {{"wall_s", wall_s}, {"events", events_}, {"simulated_s", s_from_us(now_us())},
                      {"max_rss_mb", max_rss_mb()}};
    summary["policies"] = {{"router", router_->name()}, {"batcher", workers_.empty() ? "" : workers_[0].batcher->name()},
                           {"admission", admission_->name()}, {"cost_model", cost_->name()}};
    return summary;
  }

  const Recorder& recorder() const { return recorder_; }

 private:
  static std::vector<std::string> worker_names(const RunConfig& c) {
    std::vector<std::string> names;
    for (const auto& inst : c.cluster.instances) names.push_back(inst.name);
    return names;
  }

  TimeUs now_us() const { return us_from_s(sg4::Engine::get_clock() - start_clock_s_); }
  double at_s(TimeUs t_us) const { return start_clock_s_ + s_from_us(t_us); }
  ClusterView view() const { return ClusterView{now_us(), &views_}; }

  void schedule_arrival(std::size_t i) {
    Timer::set(at_s(requests_[i].arrival_us), [this, i] { on_arrival(i); });
  }

  // Activities that completed in earlier callbacks can be released now (never the current one).
  void bury(sg4::ActivityPtr activity) {
    graveyard_.clear();
    graveyard_.push_back(std::move(activity));
  }

  void on_arrival(std::size_t i) {
    ++events_;
    progress_.update(i + 1, now_us());
    if (i + 1 < requests_.size()) schedule_arrival(i + 1);
    next_arrival_us_ = i + 1 < requests_.size() ? requests_[i + 1].arrival_us : kNever;
    const Request& r = requests_[i];
    ClusterView v = view();
    AdmissionDecision ad = admission_->admit(r, v);
    if (!ad.admitted) return recorder_.reject(r.id, v.now_us, ad.reason);
    RouteDecision rd = route_checked(*router_, r, v);
    if (rd.rejected()) return recorder_.reject(r.id, v.now_us, rd.reason);
    const int w = rd.worker;
    recorder_.routed(r.id, w);
    predicted_work_us_[r.id] = request_work_us(*cost_, *workers_[w].instance, r.input_tokens, r.output_tokens);
    views_[w].outstanding_work_us += predicted_work_us_[r.id];
    ++workers_[w].in_transit;
    ++views_[w].waiting;
    double bytes = config_.sim.message_overhead_bytes + config_.sim.request_bytes_per_token * r.input_tokens;
    send(Pending::kToWorker, platform_.router, platform_.workers[w], w, r.id, -1, bytes);
  }

  void send(Pending::Kind kind, sg4::Host* from, sg4::Host* to, int worker, RequestId id, TimeUs first_token_us,
            double bytes) {
    Pending* p = new_pending();
    p->kind = kind;
    p->worker = worker;
    p->id = id;
    p->first_token_us = first_token_us;
    if (network_ == Network::kNone) return handle(*p);
    if (network_ == Network::kLatency) {
      TimeUs delay = platform_.one_way_latency_us[worker] + us_from_s(bytes / platform_.route_bandwidth_bps[worker]);
      Timer::set(at_s(now_us() + delay), [this, p] {
        ++events_;
        handle(*p);
      });
      return;
    }
    sg4::CommPtr comm = sg4::Comm::sendto_init(from, to);
    comm->set_payload_size(static_cast<std::uint64_t>(bytes));
    comm->set_data(p);
    p->activity = comm;
    comm->start();
  }

  Pending* new_pending() {
    if (free_.empty()) {
      pool_.emplace_back();
      return &pool_.back();
    }
    Pending* p = free_.back();
    free_.pop_back();
    return p;
  }

  void on_completion(const sg4::Activity& a) {
    auto* p = a.get_data<Pending>();
    if (p == nullptr) return;
    ++events_;
    handle(*p);
  }

  void handle(Pending& p) {
    if (p.kind == Pending::kBatchDone) return on_batch_done(p.worker);
    if (p.activity) bury(std::move(p.activity));
    if (p.kind == Pending::kToWorker) {
      Worker& w = workers_[p.worker];
      --w.in_transit;
      w.state->enqueue(requests_[p.id], now_us());
      kick(p.worker);
    } else {
      finish_request(p);
    }
    free_.push_back(&p);
  }

  void finish_request(const Pending& p) {
    const Sequence& seq = pending_done_.at(p.id);
    recorder_.finished(seq, p.worker, Outcome::kCompleted, "", p.first_token_us, now_us());
    double latency = double(now_us() - seq.request.arrival_us);
    double& ewma = views_[p.worker].latency_ewma_us;
    ewma = ewma == 0 ? latency : 0.9 * ewma + 0.1 * latency;
    pending_done_.erase(p.id);
  }

  void update_utilization(int wi) {
    Worker& w = workers_[wi];
    TimeUs now = now_us();
    double dt = double(now - w.util_updated_us);
    if (dt <= 0) return;
    double keep = std::exp(-dt / kUtilizationTauUs);
    double& u = views_[wi].utilization_ewma;
    u = u * keep + (w.busy ? 1.0 : 0.0) * (1.0 - keep);
    w.util_updated_us = now;
  }

  void refresh_view(int wi) {
    Worker& w = workers_[wi];
    WorkerView& v = views_[wi];
    v.waiting = static_cast<int>(w.state->waiting().size()) + w.in_transit;
    v.running = static_cast<int>(w.state->running().size());
    v.kv_blocks_free = w.state->kv().free();
  }

  // Ends sequences that left worker `wi` at time `at_us` (>= now when the worker runs ahead):
  // completed ones send their response to the client at that time, dropped ones end there.
  void end_on_worker(int wi, std::vector<Finished>& ended, TimeUs at_us) {
    for (auto& f : ended) {
      views_[wi].outstanding_work_us -= predicted_work_us_[f.seq.request.id];
      if (f.outcome != Outcome::kCompleted) {
        recorder_.finished(f.seq, wi, f.outcome, f.reason, -1, at_us);
        continue;
      }
      RequestId id = f.seq.request.id;
      TimeUs first_token = f.seq.first_token_us + platform_.one_way_latency_us[wi];
      double bytes =
          config_.sim.message_overhead_bytes + config_.sim.response_bytes_per_token * f.seq.request.output_tokens;
      pending_done_.emplace(id, std::move(f.seq));
      if (at_us == now_us()) {
        send(Pending::kToClient, platform_.workers[wi], platform_.router, wi, id, first_token, bytes);
      } else {
        Timer::set(at_s(at_us), [this, wi, id, first_token, bytes] {
          ++events_;
          send(Pending::kToClient, platform_.workers[wi], platform_.router, wi, id, first_token, bytes);
        });
      }
    }
  }

  void record_batch(int wi, const BatchPlan& plan, TimeUs start_us, TimeUs end_us) {
    recorder_.batch(BatchRecord::of(wi, plan, start_us, end_us));
  }

  // Asks the batcher for work and runs it. Nothing can reach this worker before the next arrival
  // of the trace (when no request is in transit to it), so every step that ends before then is
  // carried out at once, at its own simulated times, and the whole run becomes one activity: the
  // same decisions and times as one activity per step, at a fraction of the events. The step that
  // would end at or after the horizon runs as the activity's tail and finishes at its completion.
  void kick(int wi) {
    Worker& w = workers_[wi];
    if (w.busy) return refresh_view(wi);
    const TimeUs now = now_us();
    const TimeUs horizon = w.in_transit > 0 ? now : next_arrival_us_;
    TimeUs t = now;
    w.has_tail = false;
    for (;;) {
      if (admission_->may_drop_before_start()) {
        auto dropped = w.state->purge_waiting(*admission_, t);
        end_on_worker(wi, dropped, t);
      }
      BatchPlan plan = w.batcher->next(*w.state, t);
      auto dropped = w.state->begin(plan, t);
      end_on_worker(wi, dropped, t);
      if (plan.idle()) {
        if (t == now) return idle(wi, plan.wake_at_us);
        break;  // busy until t, then asks again
      }
      TimeUs step = std::max<TimeUs>(1, w.state->plan_time_us(plan, *cost_, *w.instance));
      if (t + step < horizon) {
        auto completed = w.state->finish(plan, t + step);
        record_batch(wi, plan, t, t + step);
        end_on_worker(wi, completed, t + step);
        t += step;
        ++events_;
        continue;
      }
      w.plan = std::move(plan);
      w.has_tail = true;
      w.batch_start_us = t;
      t += step;
      break;
    }
    update_utilization(wi);
    w.busy = true;
    refresh_view(wi);
    sg4::ExecPtr exec = sg4::Exec::init();
    exec->set_flops_amount(static_cast<double>(t - now) * (kFlopsPerSecond / 1e6));
    exec->set_host(platform_.workers[wi]);
    exec->set_data(&w.done);
    w.done.activity = exec;
    exec->start();
  }

  void idle(int wi, TimeUs wake_at_us) {
    Worker& w = workers_[wi];
    refresh_view(wi);
    if (wake_at_us == kNever || wake_at_us >= w.wake_at_us) return;
    w.wake_at_us = std::max(wake_at_us, now_us());
    TimeUs at = w.wake_at_us;
    Timer::set(at_s(at), [this, wi, at] { on_wake(wi, at); });
  }

  void on_wake(int wi, TimeUs at) {
    ++events_;
    Worker& w = workers_[wi];
    if (w.wake_at_us != at) return;  // superseded by an earlier wake-up or already handled
    w.wake_at_us = kNever;
    kick(wi);
  }

  void on_batch_done(int wi) {
    Worker& w = workers_[wi];
    bury(std::move(w.done.activity));
    const TimeUs now = now_us();
    update_utilization(wi);
    w.busy = false;
    if (w.has_tail) {
      record_batch(wi, w.plan, w.batch_start_us, now);
      auto completed = w.state->finish(w.plan, now);
      end_on_worker(wi, completed, now);
    }
    kick(wi);
  }

  static constexpr double kUtilizationTauUs = 1e6;

  const RunConfig& config_;
  const std::vector<Request>& requests_;
  SimRunOptions options_;
  Recorder recorder_;
  std::vector<TimeUs> predicted_work_us_;
  Progress progress_;
  std::unique_ptr<CostModel> cost_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<Router> router_;
  std::vector<Worker> workers_;
  std::vector<WorkerView> views_;
  enum class Network { kFlow, kLatency, kNone } network_ = Network::kFlow;
  Platform platform_;
  double start_clock_s_ = 0;
  TimeUs next_arrival_us_ = kNever;  // no request can reach any worker earlier
  std::int64_t events_ = 0;
  std::deque<Pending> pool_;
  std::vector<Pending*> free_;
  std::vector<sg4::ActivityPtr> graveyard_;
  std::unordered_map<RequestId, Sequence> pending_done_;  // completed, response on the way
};

}  // namespace

nlohmann::json run_in_process(const RunConfig& config, const Trace& trace, const SimRunOptions& options) {
  static bool logs_silenced = [] {
    xbt_log_control_set("root.thresh:critical");
    return true;
  }();
  (void)logs_silenced;
  int argc = 1;
  char name[] = "twinfer";
  char* argv[] = {name, nullptr};
  sg4::Engine engine(&argc, argv);
  // Plain max-min sharing with no TCP calibration factors and no acknowledgment traffic: a
  // payload takes the route's latency plus its size over the bottleneck's bandwidth, as the
  // config says, instead of SimGrid's default Ethernet-calibrated LV08 model.
  sg4::Engine::set_config("network/model:CM02");
  sg4::Engine::set_config("network/crosstraffic:0");
  Driver driver(config, trace, options);
  nlohmann::json summary = driver.run();
  if (!options.out_dir.empty()) write_run_outputs(driver.recorder(), summary, options.out_dir, config.sim.timeline);
  return summary;
}

}  // namespace twinfer::sim
