#include "sim/sim_driver.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <cstdio>

#include <simgrid/kernel/Timer.hpp>
#include <xbt/log.h>

#include "core/error.h"
#include "policies/cost/step_time.h"
#include "serving/lifecycle_reasons.h"
#include "serving/run_policies.h"
#include "sim/driver.h"

namespace twinfer::sim {
using simgrid::kernel::timer::Timer;

namespace {

// The heap order of DriverEvents: the later one is "less".
bool later(const DriverEvent& a, const DriverEvent& b) {
  return a.at_us != b.at_us ? a.at_us > b.at_us : a.key > b.key;
}

// Peak resident memory of this process so far (the simulation runs in its own child).
double max_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

}  // namespace

Driver::Driver(const RunConfig& config, const Trace& trace, const SimRunOptions& options)
    : config_(config), requests_(trace.requests), options_(options),
      recorder_(trace.requests, worker_names(config), config.workload.slo, config.sim.timeline, config.sim.step_log),
      predicted_work_us_(trace.requests.size(), 0), progress_(options.progress, trace.requests.size()),
      protection_(config.protection), health_(config.cluster.instances.size(), config.protection.health, 0),
      links_(config.cluster.instances.size(), options.seed + 104729) {
  RunPolicies policies = make_run_policies(config, options.seed);
  cost_ = std::move(policies.cost);
  admission_ = std::move(policies.admission);
  shed_ = std::move(policies.shed);
  router_ = std::move(policies.router);
  versions_ = std::make_unique<VersionChoice>(config.cluster, config.traffic_split, options.seed);
  elastic_ = std::make_unique<ElasticCluster>(config, *cost_, options.seed, recorder_, versions_.get());
  for (const auto& inst : config.cluster.instances) {
    SimWorker w;
    w.instance = &inst;
    w.batcher = make_worker_batcher(config, inst, *cost_, options.seed);
    w.state = std::make_unique<WorkerState>(w.batcher->kv_capacity());
    w.state->record_kv_events(router_->reads_kv_events());
    w.contention = cost_->contention(inst);
    for (const auto& other : config.cluster.instances) {
      if (other.host == inst.host && other.index != inst.index) w.colocated.push_back(other.index);
    }
    workers_.push_back(std::move(w));
    WorkerView v;
    v.index = inst.index;
    v.instance = &inst;
    v.kv_blocks_total = workers_.back().state->kv().total();
    v.kv_blocks_free = v.kv_blocks_total;
    v.kv_block_tokens = workers_.back().state->kv().block_tokens();
    v.lifecycle = elastic_->lifecycle(inst.index);
    views_.push_back(v);
  }
  view_changes_ = ViewChanges(views_.size());
  network_ = config.sim.network == "flow" ? Network::kFlow
             : config.sim.network == "latency" ? Network::kLatency
                                               : Network::kNone;
  for (const HostSpec& h : config.cluster.hosts) {
    if (h.memory_bandwidth_gbps > 0 && network_ != Network::kFlow) {
      throw Error("cluster.hosts (host '" + h.name +
                  "').memory_bandwidth_gbps: the host memory shared by the KV host tier's copies is modeled with "
                  "sim.network=flow only (sim.network is '" + config.sim.network + "'); remove the key or use flow");
    }
  }
  track_health_ = !options.faults.empty() || protection_.health.breaker.slow_call_us > 0;
  // Views are exact in queue lengths while workers run ahead, not in KV use or utilization; an
  // autoscaler reads those.
  run_ahead_ = config.sim.fast_forward && router_->view_use() <= ViewUse::kQueues &&
               admission_->view_use() <= ViewUse::kQueues && shed_->view_use() <= ViewUse::kQueues &&
               !elastic_->autoscaling();
  DispatcherParts d;
  d.requests = &requests_;
  d.protection = &protection_;
  d.router = router_.get();
  d.shed = shed_.get();
  d.admission = admission_.get();
  d.worker_names = worker_names(config);
  d.seed = options.seed;
  d.versions = versions_.get();
  d.elastic = elastic_.get();
  d.health = track_health_ ? &health_ : nullptr;
  d.recorder = &recorder_;
  dispatcher_ = std::make_unique<Dispatcher>(std::move(d), static_cast<Carrier&>(*this));
}

nlohmann::json Driver::run() {
  sg4::Engine& engine = *sg4::Engine::get_instance();
  platform_ = build_platform(config_.cluster);
  start_clock_s_ = sg4::Engine::get_clock();
  own_clock_ = true;  // with a flow network, until the first flow starts
  sg4::Activity::on_completion_cb([this](const sg4::Activity& a) { on_completion(a); });
  auto wall_start = std::chrono::steady_clock::now();
  schedule_faults();  // first, so that a fault applies to the arrivals at its own time
  if (elastic_->autoscaling()) schedule_decision(elastic_->interval_us());
  if (!requests_.empty()) {
    next_arrival_us_ = requests_[0].arrival_us;
    schedule_arrival(0);
  }
  for (;;) {
    if (flows_ > 0) {
      // SimGrid leads while a flow is under way; it returns once the last one ended (no flow and
      // no wake-up left in it), and the driver's clock takes over at SimGrid's time.
      own_clock_ = false;
      arm_wakeup();
      engine.run();
      clock_us_ = now_us();
      own_clock_ = true;
      continue;
    }
    if (queue_.empty()) break;
    pop_event(&clock_us_)();
  }
  double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  progress_.finish();
  graveyard_.clear();
  recorder_.check_all_ended();
  elastic_->finish(now_us());

  nlohmann::json summary = recorder_.summary();
  summary.update(elastic_->summary(summary["requests"]["completed"].get<std::int64_t>()));
  nlohmann::json models = per_model_summary(recorder_, config_.cluster);
  if (!models.is_null()) summary["models"] = std::move(models);
  summary["sim"] = {{"wall_s", wall_s}, {"events", events_}, {"simulated_s", s_from_us(now_us())},
                    {"max_rss_mb", max_rss_mb()}};
  summary["policies"] = {{"router", router_->name()}, {"batcher", workers_.empty() ? "" : workers_[0].batcher->name()},
                         {"admission", admission_->name()}, {"cost_model", cost_->name()}};
  if (!options_.faults.empty() || !health_.changes().empty()) summary["faults"] = faults_summary();
  return summary;
}

std::vector<std::string> Driver::worker_names(const RunConfig& c) {
  std::vector<std::string> names;
  for (const auto& inst : c.cluster.instances) names.push_back(inst.name);
  return names;
}

void Driver::KvEvents::take(int worker, std::vector<KvEvent>& out) {
  driver->workers_[static_cast<std::size_t>(worker)].state->take_kv_events(out);
}

TimeUs Driver::now_us() const {
  return own_clock_ ? clock_us_ : us_from_s(sg4::Engine::get_clock() - start_clock_s_);
}
double Driver::at_s(TimeUs t_us) const { return start_clock_s_ + s_from_us(t_us); }

ClusterView Driver::view() {
  if (track_health_) refresh_health();
  return ClusterView{now_us(), &views_, &view_changes_, router_->reads_kv_events() ? &kv_events_ : nullptr};
}

void Driver::schedule(TimeUs at_us, std::function<void()> fn, EventOrder order) {
  std::uint32_t action;
  if (free_actions_.empty()) {
    action = static_cast<std::uint32_t>(actions_.size());
    actions_.push_back(std::move(fn));
  } else {
    action = free_actions_.back();
    free_actions_.pop_back();
    actions_[action] = std::move(fn);
  }
  const std::uint64_t key = (std::uint64_t(order) << 63) | queue_seq_++;
  queue_.push_back(DriverEvent{at_us, key, action});
  std::push_heap(queue_.begin(), queue_.end(), later);
  if (!own_clock_ && flows_ > 0 && !running_events_ && at_us < wakeup_at_us_) arm_wakeup();
}

std::function<void()> Driver::pop_event(TimeUs* at_us) {
  std::pop_heap(queue_.begin(), queue_.end(), later);
  const DriverEvent e = queue_.back();
  queue_.pop_back();
  if (at_us != nullptr) *at_us = e.at_us;
  free_actions_.push_back(e.action);
  return std::move(actions_[e.action]);
}

void Driver::arm_wakeup() {
  if (wakeup_ != nullptr) wakeup_->remove();
  wakeup_ = nullptr;
  wakeup_at_us_ = kNever;
  if (queue_.empty() || flows_ == 0) return;  // with no flow under way, the driver's own loop runs the queue
  wakeup_at_us_ = queue_.front().at_us;
  // An event at the current microsecond runs at once: SimGrid's clock may be a fraction past it
  // (a flow ends between microseconds), and it refuses a timer in the past.
  wakeup_ = Timer::set(std::max(at_s(wakeup_at_us_), sg4::Engine::get_clock()), [this] {
    wakeup_ = nullptr;  // SimGrid deletes the timer after this call
    run_due_events();
  });
}

void Driver::run_due_events() {
  running_events_ = true;
  const TimeUs now = now_us();
  while (!queue_.empty() && queue_.front().at_us <= now) pop_event()();
  running_events_ = false;
  arm_wakeup();
}

void Driver::schedule_arrival(std::size_t i) {
  schedule(requests_[i].arrival_us, [this, i] { on_arrival(i); });
}

// Activities that completed in earlier callbacks can be released now (never the current one).
void Driver::bury(sg4::ActivityPtr activity) {
  graveyard_.clear();
  graveyard_.push_back(std::move(activity));
}

void Driver::on_arrival(std::size_t i) {
  ++events_;
  progress_.update(i + 1, now_us());
  if (i + 1 < requests_.size()) schedule_arrival(i + 1);
  next_arrival_us_ = i + 1 < requests_.size() ? requests_[i + 1].arrival_us : kNever;
  dispatcher_->arrive(requests_[i].id, view());
}

void Driver::send(const Request& r, int w, int attempt) {
  predicted_work_us_[r.id] = request_work_us(*cost_, *workers_[w].instance, r.input_tokens, r.output_tokens);
  views_[w].outstanding_work_us += predicted_work_us_[r.id];
  ++workers_[w].in_transit;
  ++views_[w].waiting;
  view_changes_.touch(std::size_t(w));
  double bytes = config_.sim.message_overhead_bytes + config_.sim.request_bytes_per_token * r.input_tokens;
  const TimeUs dispatch = static_cast<TimeUs>(std::llround(config_.sim.dispatch_us));
  if (dispatch == 0) return post(Pending::kToWorker, w, r.id, -1, bytes);
  const RequestId id = r.id;
  schedule(now_us() + dispatch, [this, w, id, bytes] {
    ++events_;
    post(Pending::kToWorker, w, id, -1, bytes);
  });
}

void Driver::at(const DispatchTimer& timer) {
  schedule(timer.at_us, [this, timer] {
    ++events_;
    dispatcher_->fire(timer, now_us());
  });
}

void Driver::post(Pending::Kind kind, int worker, RequestId id, TimeUs first_token_us, double bytes) {
  SimWorker& w = workers_[worker];
  if (links_.partitioned(worker)) {
    w.held.push_back([this, kind, worker, id, first_token_us, bytes] { post(kind, worker, id, first_token_us, bytes); });
    return;
  }
  Pending* p = new_pending();
  p->kind = kind;
  p->worker = worker;
  p->id = id;
  p->first_token_us = first_token_us;
  if (links_.pristine(worker)) return transmit(p, bytes);
  const TimeUs now = now_us();
  const auto direction = kind == Pending::kToWorker ? LinkDirection::kToWorker : LinkDirection::kToRouter;
  const TimeUs extra = links_.delivery_us(worker, direction, now) - now;
  if (extra == 0) return transmit(p, bytes);
  schedule(now_us() + extra, [this, p, bytes] {
    ++events_;
    transmit(p, bytes);
  });
}

void Driver::transmit(Pending* p, double bytes) {
  const int worker = p->worker;
  if (network_ == Network::kNone) return handle(*p);
  if (network_ == Network::kLatency) {
    TimeUs delay = platform_.one_way_latency_us[worker] + us_from_s(bytes / platform_.route_bandwidth_bps[worker]);
    schedule(now_us() + delay, [this, p] {
      ++events_;
      handle(*p);
    });
    return;
  }
  const bool to_worker = p->kind == Pending::kToWorker;
  start_flow(p, to_worker ? platform_.router : platform_.workers[worker],
             to_worker ? platform_.workers[worker] : platform_.router, bytes);
}

void Driver::start_flow(Pending* p, sg4::Host* from, sg4::Host* to, double bytes) {
  if (own_clock_) {
    // The first flow after a quiet spell: SimGrid, with nothing under way, jumps to the driver's
    // clock (unless it already is a fraction of a microsecond past it), and leads from here.
    const double at = at_s(clock_us_);
    if (at > sg4::Engine::get_clock()) sg4::Engine::get_instance()->run_until(at);
    own_clock_ = false;
  }
  ++flows_;
  sg4::CommPtr comm = sg4::Comm::sendto_init(from, to);
  comm->set_payload_size(static_cast<std::uint64_t>(bytes));
  comm->set_data(p);
  p->activity = comm;
  comm->start();
}

Pending* Driver::new_pending() {
  if (free_.empty()) {
    pool_.emplace_back();
    return &pool_.back();
  }
  Pending* p = free_.back();
  free_.pop_back();
  return p;
}

void Driver::on_completion(const sg4::Activity& a) {
  auto* p = a.get_data<Pending>();
  if (p == nullptr) return;
  ++events_;
  --flows_;
  handle(*p);
  if (flows_ == 0 && !running_events_) arm_wakeup();  // removes the wake-up: SimGrid's run ends
}

void Driver::handle(Pending& p) {
  if (p.activity) bury(std::move(p.activity));
  if (p.kind == Pending::kToWorker) {
    arrive_at_worker(p);
  } else if (p.kind == Pending::kHostLoad) {
    // The blocks are on the GPUs: the step runs (unless the worker went down meanwhile).
    SimWorker& w = workers_[p.worker];
    if (w.run_epoch == p.run_epoch && w.busy) {
      w.busy_until_us = now_us() + p.step_us;
      schedule_run_end(p.worker, w.busy_until_us);
    }
  } else {
    finish_request(p);
  }
  free_.push_back(&p);
}

void Driver::left_worker(int wi, RequestId id) {
  TimeUs& work = views_[wi].outstanding_work_us;
  work = std::max<TimeUs>(0, work - predicted_work_us_[id]);
  view_changes_.touch(std::size_t(wi));
}

void Driver::arrive_at_worker(const Pending& p) {
  SimWorker& w = workers_[p.worker];
  --w.in_transit;
  settle(p.worker);
  if (!dispatcher_->current_on(p.id, p.worker)) {  // abandoned on the way (timed out, router restarted)
    left_worker(p.worker, p.id);
    return refresh_view(p.worker);
  }
  if (!w.alive) {
    left_worker(p.worker, p.id);
    refresh_view(p.worker);
    return dispatcher_->attempt_failed(
        p.id, p.worker, reasons::worker_unreachable(w.instance->name, reasons::kConnectionRefused), true, now_us());
  }
  w.state->enqueue(requests_[p.id], now_us());
  kick(p.worker);
}

void Driver::finish_request(const Pending& p) {
  auto it = pending_done_.find(done_key(p.id, p.worker));
  if (it == pending_done_.end()) return;  // a stale result of the same request from the same worker took it
  Sequence seq = std::move(it->second);
  pending_done_.erase(it);
  const TimeUs latency = now_us() - seq.request.arrival_us;
  // Stale when the request was retried elsewhere or ended.
  if (!dispatcher_->answered(p.id, p.worker, Outcome::kCompleted, "", now_us(), &seq, p.first_token_us)) return;
  double& ewma = views_[p.worker].latency_ewma_us;
  ewma = ewma == 0 ? double(latency) : 0.9 * ewma + 0.1 * double(latency);
  view_changes_.touch(std::size_t(p.worker));
}

void Driver::update_utilization(int wi) {
  SimWorker& w = workers_[wi];
  TimeUs now = now_us();
  double dt = double(now - w.util_updated_us);
  if (dt <= 0) return;
  double keep = std::exp(-dt / kUtilizationTauUs);
  double& u = views_[wi].utilization_ewma;
  u = u * keep + (w.busy ? 1.0 : 0.0) * (1.0 - keep);
  view_changes_.touch(std::size_t(wi));
  w.util_updated_us = now;
}

void Driver::refresh_view(int wi) {
  SimWorker& w = workers_[wi];
  WorkerView& v = views_[wi];
  v.waiting = static_cast<int>(w.state->waiting().size()) + w.in_transit;
  v.running = static_cast<int>(w.state->running().size());
  v.kv_blocks_free = w.state->kv().free();
  v.prefix_queried_tokens = w.state->prefix_stats().queried_tokens;
  v.prefix_hit_tokens = w.state->prefix_stats().hit_tokens;
  v.prefix_evictions = w.state->kv().evictions();
  v.prefix_host_hit_tokens = w.state->prefix_stats().host_hit_tokens;
  view_changes_.touch(std::size_t(wi));
}

// Ends sequences that left worker `wi` at time `at_us` (>= now when the worker runs ahead):
// completed ones send their response to the client at that time, dropped ones end there. Results
// of attempts the router gave up on are discarded.
void Driver::end_on_worker(int wi, std::vector<Finished>& ended, TimeUs at_us) {
  for (auto& f : ended) {
    RequestId id = f.seq.request.id;
    left_worker(wi, id);
    if (!dispatcher_->current_on(id, wi)) continue;
    if (f.outcome != Outcome::kCompleted) {
      dispatcher_->answered(id, wi, f.outcome, f.reason, at_us, &f.seq, -1);
      continue;
    }
    TimeUs first_token = f.seq.first_token_us + platform_.one_way_latency_us[wi];
    double bytes =
        config_.sim.message_overhead_bytes + config_.sim.response_bytes_per_token * f.seq.request.output_tokens;
    pending_done_[done_key(id, wi)] = std::move(f.seq);
    if (at_us == now_us()) {
      post(Pending::kToClient, wi, id, first_token, bytes);
    } else {
      schedule(at_us, [this, wi, id, first_token, bytes] {
        ++events_;
        post(Pending::kToClient, wi, id, first_token, bytes);
      });
    }
  }
}

void Driver::record_batch(int wi, const BatchPlan& plan, TimeUs start_us, TimeUs end_us) {
  // The shape is only for steps.csv: the simulator's hot path skips it otherwise.
  recorder_.batch(BatchRecord::of(wi, plan, *workers_[wi].state, start_us, end_us, recorder_.keeps_steps()));
}

TimeUs Driver::step_time(int wi, TimeUs predicted_us) const {
  const SimWorker& w = workers_[wi];
  TimeUs step = std::max<TimeUs>(1, predicted_us);
  if (w.slowdown != 1) step = static_cast<TimeUs>(std::llround(double(step) * w.slowdown));
  if (w.contention > 0 && !w.colocated.empty()) {
    // The instances of the host busy as this step starts slow it down (see CostModel::contention).
    int busy = 0;
    for (int other : w.colocated) busy += workers_[other].alive && workers_[other].busy ? 1 : 0;
    step = static_cast<TimeUs>(std::llround(double(step) * (1 + w.contention * busy / double(w.colocated.size()))));
  }
  return step;
}

std::int64_t Driver::take_host_loads(int wi) {
  SimWorker& w = workers_[wi];
  if (!w.state->has_kv_transfers()) return 0;
  transfers_.clear();
  w.state->take_kv_transfers(transfers_);
  return static_cast<std::int64_t>(transfers_.loads.size());
}

void Driver::load_then_step(int wi, BatchPlan plan, TimeUs t, std::int64_t blocks, TimeUs step_us) {
  SimWorker& w = workers_[wi];
  w.plan = std::move(plan);
  w.has_tail = true;
  w.batch_start_us = t;
  update_utilization(wi);
  set_busy(wi, true);
  w.busy_until_us = t;  // at least; its end is known when the blocks arrive
  refresh_view(wi);
  const double bytes = host_copy_bytes(*w.instance, blocks, w.state->kv().block_tokens());
  const auto start = [this, wi, bytes, step_us, epoch = w.run_epoch] {
    if (workers_[wi].run_epoch != epoch) return;  // the worker went down first
    Pending* p = new_pending();
    p->kind = Pending::kHostLoad;
    p->worker = wi;
    p->run_epoch = epoch;
    p->step_us = step_us;
    start_flow(p, platform_.host_memory[std::size_t(wi)], platform_.gpu_memory[std::size_t(wi)], bytes);
  };
  if (t == now_us()) return start();
  schedule(t, [this, start] {
    ++events_;
    start();
  });
}

void Driver::plan_run(int wi, TimeUs t, std::int64_t steps, TimeUs stop) {
  // Enough steps at a time that a run costs little per step, few enough that the steps planned
  // past the request that settles the run stay few.
  constexpr std::int64_t kMaxRunSteps = 64;
  SimWorker& w = workers_[wi];
  w.run_ends.clear();
  w.run_next = 0;
  w.run_start_us = t;
  const auto seqs = static_cast<std::int64_t>(w.state->running().size());
  std::int64_t context = w.state->running_context_tokens();
  steps = std::min(steps, kMaxRunSteps);
  // Timed in growing chunks: a run that its stop cuts short times few steps it does not take.
  for (std::int64_t chunk = 4; steps > 0; chunk *= 4) {
    const std::int64_t n = std::min(chunk, steps);
    const std::size_t first = w.run_ends.size();
    cost_->decode_times_us(*w.instance, seqs, context, n, w.run_ends);
    context += seqs * n;
    steps -= n;
    for (std::size_t k = first; k < w.run_ends.size(); ++k) {
      t += step_time(wi, w.run_ends[k]);
      w.run_ends[k] = t;
      if (t >= stop) {
        w.run_ends.resize(k + 1);
        return;
      }
    }
  }
}

void Driver::apply_run(int wi, std::size_t steps) {
  if (steps == 0) return;
  SimWorker& w = workers_[wi];
  assert(w.run_next + steps <= w.run_ends.size());
  const auto seqs = static_cast<std::int64_t>(w.state->running().size());
  const std::int64_t context = recorder_.keeps_steps() ? w.state->running_context_tokens() : 0;
  const TimeUs* ends = w.run_ends.data() + w.run_next;
  recorder_.decode_steps(wi, seqs, context, w.run_start_us, ends, steps);
  w.run_next += steps;
  w.run_start_us = ends[steps - 1];
  auto completed = w.state->advance_decode(static_cast<std::int64_t>(steps));
  end_on_worker(wi, completed, w.run_start_us);
}

void Driver::settle(int wi) {
  SimWorker& w = workers_[wi];
  if (!w.in_run()) return;
  // The steps whose end events would have run by now: before this microsecond, or with a flow
  // network, before SimGrid's clock (a flow ends between microseconds).
  const double clock_s = own_clock_ ? 0 : sg4::Engine::get_clock();
  const auto ended = [&](TimeUs end_us) { return own_clock_ ? end_us < clock_us_ : at_s(end_us) < clock_s; };
  const auto first = w.run_ends.begin() + static_cast<std::ptrdiff_t>(w.run_next);
  apply_run(wi, static_cast<std::size_t>(std::partition_point(first, w.run_ends.end(), ended) - first));
  // The step under way ends the run (as a tail would): what reached the worker waits for it.
  if (!w.in_run() || w.run_next + 1 == w.run_ends.size()) return;
  w.run_ends.resize(w.run_next + 1);
  w.busy_until_us = w.run_ends.back();
  ++w.run_epoch;  // the run's end event is void
  schedule_run_end(wi, w.busy_until_us);
}

void Driver::schedule_run_end(int wi, TimeUs at_us) {
  schedule(
      at_us,
      [this, wi, epoch = workers_[wi].run_epoch] {
        if (workers_[wi].run_epoch != epoch) return;  // the worker went down or its run was settled
        ++events_;
        on_batch_done(wi);
      },
      EventOrder::kStepEnd);
}

// Asks the batcher for work and runs it. Nothing can reach this worker before the next arrival
// of the trace or the next fault, retry or timeout (when no request is in transit to it), so every
// step that ends before then is carried out at once, at its own simulated times, and the whole run
// becomes one event: the same decisions and times as one event per step. The step that would end
// at or after the horizon runs as the tail and finishes at that event. Steady decode steps
// (Batcher::steady_decode_steps) are carried out without asking the batcher; when no policy reads
// more of the workers' views than queue lengths, they also run past the next arrival, up to the
// next fault, retry or timeout, and what reaches the worker meanwhile settles them (settle()).
void Driver::kick(int wi) {
  SimWorker& w = workers_[wi];
  if (!w.alive) return;
  if (w.busy) return refresh_view(wi);
  const TimeUs now = now_us();
  const TimeUs external = next_external_us();
  TimeUs horizon = w.in_transit > 0 ? now : std::min(next_arrival_us_, external);
  if (w.contention > 0) {
    // A co-located instance going idle changes how fast this one runs: run ahead only until then.
    for (int other : w.colocated) {
      if (workers_[other].busy) horizon = std::min(horizon, std::max(now, workers_[other].busy_until_us));
    }
  }
  const bool run_ahead = run_ahead_ && w.contention == 0;
  TimeUs t = now;
  w.has_tail = false;
  for (;;) {
    if (admission_->may_drop_before_start()) {
      auto dropped = w.state->purge_waiting(*admission_, t);
      end_on_worker(wi, dropped, t);
    }
    const std::int64_t steady = config_.sim.fast_forward && !w.device_error ? w.batcher->steady_decode_steps(*w.state) : 0;
    if (steady > 0) {
      plan_run(wi, t, steady, run_ahead ? external : horizon);
      const auto before = std::lower_bound(w.run_ends.begin(), w.run_ends.end(), horizon) - w.run_ends.begin();
      apply_run(wi, static_cast<std::size_t>(before));
      t = w.run_start_us;
      if (!w.in_run()) continue;  // every step ended before the horizon: ask again
      if (run_ahead) {
        t = w.run_ends.back();
        break;
      }
      // The next step is the tail.
      w.plan = w.state->decode_all_plan();
      w.state->begin(w.plan, t);
      take_host_loads(wi);  // none (it only decodes); the stores of the run's blocks overlap it
      w.has_tail = true;
      w.batch_start_us = t;
      t = w.run_ends[w.run_next];
      w.run_ends.clear();
      w.run_next = 0;
      break;
    }
    BatchPlan plan = w.batcher->next(*w.state, t);
    auto dropped = w.state->begin(plan, t);
    end_on_worker(wi, dropped, t);
    if (plan.idle()) {
      if (t == now) return idle(wi, plan.wake_at_us);
      break;  // busy until t, then asks again
    }
    // The flag was set before this kick began (a fault is an external event): t is now.
    if (w.device_error) return device_failed(wi);
    TimeUs step = step_time(wi, w.state->plan_time_us(plan, *cost_, *w.instance));
    if (const std::int64_t loads = take_host_loads(wi); loads > 0) {
      // Its blocks from host memory first: a flow over the host link, or without flows its time.
      if (network_ == Network::kFlow) return load_then_step(wi, std::move(plan), t, loads, step);
      step += host_copy_time_us(*w.instance, loads, w.state->kv().block_tokens());
    }
    if (t + step < horizon) {
      record_batch(wi, plan, t, t + step);
      auto completed = w.state->finish(plan, t + step);
      end_on_worker(wi, completed, t + step);
      t += step;
      continue;
    }
    w.plan = std::move(plan);
    w.has_tail = true;
    w.batch_start_us = t;
    t += step;
    break;
  }
  update_utilization(wi);
  set_busy(wi, true);
  w.busy_until_us = t;
  refresh_view(wi);
  schedule_run_end(wi, t);
}

void Driver::idle(int wi, TimeUs wake_at_us) {
  SimWorker& w = workers_[wi];
  refresh_view(wi);
  if (wake_at_us == kNever || wake_at_us >= w.wake_at_us) return;
  w.wake_at_us = std::max(wake_at_us, now_us());
  TimeUs at = w.wake_at_us;
  schedule(at, [this, wi, at] { on_wake(wi, at); });
}

void Driver::on_wake(int wi, TimeUs at) {
  ++events_;
  SimWorker& w = workers_[wi];
  if (w.wake_at_us != at) return;  // superseded by an earlier wake-up or already handled
  w.wake_at_us = kNever;
  kick(wi);
}

void Driver::on_batch_done(int wi) {
  SimWorker& w = workers_[wi];
  const TimeUs now = now_us();
  update_utilization(wi);
  set_busy(wi, false);
  if (w.has_tail) {
    record_batch(wi, w.plan, w.batch_start_us, now);
    auto completed = w.state->finish(w.plan, now);
    end_on_worker(wi, completed, now);
    w.has_tail = false;
  }
  if (w.in_run()) apply_run(wi, w.run_ends.size() - w.run_next);
  apply_cancels(wi);
  kick(wi);
  check_drained(wi);
}

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
