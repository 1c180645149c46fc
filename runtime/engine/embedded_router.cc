#include "runtime/engine/embedded_router.h"

#include "serving/faults/fault_report.h"

#include <algorithm>
#include <cassert>
#include <thread>

#include "policies/cluster_view.h"
#include "core/error.h"
#include "serving/lifecycle_reasons.h"
#include "serving/protection.h"
#include "policies/router.h"
#include "runtime/engine/cpu_affinity.h"

namespace twinfer::runtime {
namespace {

double seconds(TimeUs t) { return s_from_us(t); }

}  // namespace

EmbeddedRouter::EmbeddedRouter(RouterParts parts)
    : parts_(std::move(parts)),
      requests_(parts_.trace->requests),
      protection_(parts_.config->protection),
      fault_events_(parts_.faults->events()),
      health_(parts_.config->cluster.instances.size(), protection_.health, 0),
      links_(parts_.config->cluster.instances.size(), parts_.seed + 104729) {
  const RunConfig& config = *parts_.config;
  const std::size_t n = config.cluster.instances.size();
  versions_ = std::make_unique<VersionChoice>(config.cluster, config.traffic_split, parts_.seed);
  {
    std::lock_guard<std::mutex> lock(*parts_.recorder_mu);
    elastic_ = std::make_unique<ElasticCluster>(config, *parts_.policies->cost, parts_.seed, *parts_.recorder,
                                                versions_.get());
  }
  for (const auto& inst : config.cluster.instances) {
    kv_capacity_.push_back(make_worker_batcher(config, inst, *parts_.policies->cost, parts_.seed)->kv_capacity());
  }
  alive_.assign(n, false);
  crashed_.assign(n, false);
  slowdown_.assign(n, 1.0);
  device_error_.assign(n, false);
  held_.resize(n);
  busy_us_.assign(n, 0);
  start_decided_us_.assign(n, 0);
  ready_since_us_.assign(n, -1);
  start_record_.assign(n, 0);
  workers_.resize(n);
  for (std::size_t w = 0; w < n; ++w) {
    last_views_.push_back(idle_view(int(w)));
    if (lifecycle(int(w)) != Lifecycle::kReady) continue;  // stopped: built if and when it starts
    workers_[w] = parts_.make_worker(int(w), callbacks());
    alive_[w] = true;
    last_views_[w] = workers_[w]->view();
    loads_.push_back(LoadRecord{int(w), "initial"});
  }
  if (elastic_->autoscaling()) next_decision_us_ = elastic_->interval_us();
  DispatcherParts d;
  d.requests = &requests_;
  d.protection = &protection_;
  d.router = parts_.policies->router.get();
  d.shed = parts_.policies->shed.get();
  d.admission = parts_.policies->admission.get();
  for (std::size_t w = 0; w < n; ++w) d.worker_names.push_back(worker_name(int(w)));
  d.seed = parts_.seed;
  d.versions = versions_.get();
  d.elastic = elastic_.get();
  d.health = &health_;
  d.recorder = parts_.recorder;
  d.recorder_mu = parts_.recorder_mu;
  dispatcher_ = std::make_unique<Dispatcher>(std::move(d), static_cast<Carrier&>(*this));
}

EmbeddedRouter::~EmbeddedRouter() {
  for (auto& t : loaders_) t.join();
  // Whatever is still on a worker now is a copy the router no longer waits for.
  for (auto& w : workers_) {
    if (w) w->crash();
  }
}

const std::string& EmbeddedRouter::worker_name(int w) const {
  return parts_.config->cluster.instances[std::size_t(w)].name;
}

WorkerView EmbeddedRouter::idle_view(int w) const {
  WorkerView v;
  v.index = w;
  v.instance = &parts_.config->cluster.instances[std::size_t(w)];
  v.kv_blocks_total = v.kv_blocks_free = kv_capacity_[std::size_t(w)].blocks_total;
  v.kv_block_tokens = kv_capacity_[std::size_t(w)].block_tokens;
  return v;
}

WorkerCallbacks EmbeddedRouter::callbacks() {
  WorkerCallbacks cb;
  cb.on_end = [this](int worker, const Finished& f, TimeUs end_us) {
    Message m;
    m.kind = Kind::kEnd;
    m.worker = worker;
    m.id = f.seq.request.id;
    m.ended = f;
    m.end_us = end_us;
    {
      std::lock_guard<std::mutex> lock(mail_mu_);
      mail_.push_back(std::move(m));
    }
    mail_cv_.notify_one();
  };
  cb.on_failed = [this](int worker, const std::string& failure) {
    Message m;
    m.kind = Kind::kFailed;
    m.worker = worker;
    m.ended.reason = failure;
    {
      std::lock_guard<std::mutex> lock(mail_mu_);
      mail_.push_back(std::move(m));
    }
    mail_cv_.notify_one();
  };
  cb.on_policy_error = [this](int worker, const std::string& error) {
    std::lock_guard<std::mutex> lock(mail_mu_);
    if (policy_error_.empty()) policy_error_ = "worker " + worker_name(worker) + ": " + error;
  };
  cb.on_batch = [this](const BatchRecord& b) {
    std::lock_guard<std::mutex> lock(*parts_.recorder_mu);
    parts_.recorder->batch(b);
    busy_us_[std::size_t(b.worker)] += b.end_us - b.start_us;
    ++steps_;
  };
  return cb;
}

std::string EmbeddedRouter::policy_error() const {
  std::lock_guard<std::mutex> lock(mail_mu_);
  return policy_error_;
}

void EmbeddedRouter::start_worker(int w) {
  const std::size_t i = std::size_t(w);
  workers_[i]->set_slowdown(slowdown_[i]);
  workers_[i]->set_device_error(device_error_[i]);
  workers_[i]->start(i < parts_.cores.size() ? parts_.cores[i] : -1);
}

void EmbeddedRouter::run() {
  // Time zero of the run is now, after the weights were built: trace times and run times coincide.
  parts_.clock->reset();
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    if (workers_[w]) start_worker(int(w));
  }
  next_heartbeat_us_ = 0;
  while (dispatcher_->ended_count() < requests_.size()) {
    const TimeUs now = parts_.clock->now_us();
    now_ = now;
    take_mail(now);
    fire_due(now);
    if (dispatcher_->ended_count() == requests_.size()) break;
    const TimeUs next = next_due_us(parts_.clock->now_us());
    std::unique_lock<std::mutex> lock(mail_mu_);
    if (next == kNever) {
      mail_cv_.wait(lock, [this] { return !mail_.empty(); });
    } else {
      mail_cv_.wait_until(lock, parts_.clock->at(next), [this] { return !mail_.empty(); });
    }
  }
  {
    std::lock_guard<std::mutex> lock(*parts_.recorder_mu);
    elastic_->finish(parts_.clock->now_us());
  }
  for (auto& t : loaders_) t.join();
  loaders_.clear();
  for (auto& w : workers_) {
    if (w) w->crash();
  }
}

TimeUs EmbeddedRouter::next_due_us(TimeUs now) const {
  TimeUs next = next_heartbeat_us_;
  if (next_arrival_ < requests_.size()) next = std::min(next, requests_[next_arrival_].arrival_us);
  if (next_fault_ < fault_events_.size()) next = std::min(next, fault_events_[next_fault_].at_us);
  if (!timers_.empty()) next = std::min(next, timers_.top().at_us);
  next = std::min(next, next_decision_us_);
  return std::min(next, health_.next_change_us(now));
}

void EmbeddedRouter::take_mail(TimeUs now) {
  std::vector<Message> mail;
  {
    std::lock_guard<std::mutex> lock(mail_mu_);
    if (!load_error_.empty()) throw Error(load_error_);
    mail.swap(mail_);
  }
  for (Message& m : mail) {
    if (m.kind == Kind::kReady) {
      take_loaded(m, now);
    } else {
      post(std::move(m), now);
    }
  }
}

// Everything due by `now`, earliest first; at equal times faults, then arrivals, then timers, then
// heartbeats, then scaling decisions.
void EmbeddedRouter::fire_due(TimeUs now) {
  // A late router thread (a busy machine) must not read its own lateness as missed heartbeats:
  // live workers are heard from before anything that waited is decided.
  if (next_heartbeat_us_ <= now) heartbeats(now);
  for (;;) {
    const TimeUs fault_at = next_fault_ < fault_events_.size() ? fault_events_[next_fault_].at_us : kNever;
    const TimeUs arrival_at = next_arrival_ < requests_.size() ? requests_[next_arrival_].arrival_us : kNever;
    const TimeUs timer_at = timers_.empty() ? kNever : timers_.top().at_us;
    const TimeUs first = std::min({fault_at, arrival_at, timer_at, next_heartbeat_us_, next_decision_us_});
    if (first > now) break;
    if (fault_at == first) {
      apply_fault(fault_events_[next_fault_++], now);
    } else if (arrival_at == first) {
      dispatcher_->arrive(requests_[next_arrival_++].id, cluster_view(now));
    } else if (timer_at == first) {
      Timer t = timers_.top();
      timers_.pop();
      if (t.kind == TimerKind::kDeliver) {
        deliver(messages_[t.message], now);
      } else if (t.kind == TimerKind::kDispatch) {
        dispatcher_->fire(t.dispatch, now);
      } else {
        become_ready(t.worker, t.epoch, now);
      }
    } else if (next_heartbeat_us_ == first) {
      heartbeats(now);
    } else {
      decide(now);
    }
  }
  health_.refresh(now);
  fail_unreachable(now);
  stop_drained(now);
}

ClusterView EmbeddedRouter::cluster_view(TimeUs now) {
  ClusterView view{now, &views(now)};
  if (parts_.policies->router->reads_kv_events()) view.kv_events = &kv_events_;
  return view;
}

void EmbeddedRouter::KvEvents::take(int worker, std::vector<KvEvent>& out) {
  const auto w = static_cast<std::size_t>(worker);
  if (cursors.size() < router->workers_.size()) cursors.resize(router->workers_.size());
  if (router->alive_[w] && !router->links_.partitioned(worker)) router->workers_[w]->read_kv_events(cursors[w], out);
}

std::vector<WorkerView>& EmbeddedRouter::views(TimeUs now) {
  views_ = last_views_;
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    if (alive_[w] && !links_.partitioned(int(w))) views_[w] = workers_[w]->view();
    views_[w].lifecycle = lifecycle(int(w));
    views_[w].ready_since_us = ready_since_us_[w];
  }
  health_.apply(views_, now);
  return views_;
}

void EmbeddedRouter::send(const Request& r, int worker, int attempt) {
  Message m;
  m.kind = Kind::kSubmit;
  m.worker = worker;
  m.id = r.id;
  m.attempt = attempt;
  post(std::move(m), now_);
}

void EmbeddedRouter::cancel(RequestId id, int worker) {
  Message m;
  m.kind = Kind::kCancel;
  m.worker = worker;
  m.id = id;
  post(std::move(m), now_);
}

void EmbeddedRouter::at(const DispatchTimer& timer) {
  Timer t;
  t.at_us = timer.at_us;
  t.order = timer_order_++;
  t.kind = TimerKind::kDispatch;
  t.dispatch = timer;
  timers_.push(t);
}

// Every hand-off crosses the link model, so that messages of one direction keep their order.
void EmbeddedRouter::post(Message m, TimeUs now) {
  const int w = m.worker;
  messages_.push_back(std::move(m));
  const std::size_t index = messages_.size() - 1;
  if (links_.partitioned(w)) {
    held_[std::size_t(w)].push_back(index);
    return;
  }
  const TimeUs at = links_.delivery_us(w, direction_of(messages_[index].kind), now);
  if (at <= now) {
    deliver(messages_[index], now);
  } else {
    timers_.push(Timer{at, timer_order_++, TimerKind::kDeliver, index, {}});
  }
}

void EmbeddedRouter::deliver(const Message& m, TimeUs now) {
  const std::size_t w = std::size_t(m.worker);
  if (links_.partitioned(m.worker)) {
    held_[w].push_back(std::size_t(&m - messages_.data()));
    return;
  }
  if (m.kind == Kind::kEnd) {
    dispatcher_->answered(m.id, m.worker, m.ended.outcome, m.ended.reason, now, &m.ended.seq,
                          m.ended.seq.first_token_us);
    return;
  }
  if (m.kind == Kind::kFailed) {
    failed(m.worker, m.ended.reason, now);
    return;
  }
  if (m.kind == Kind::kCancel) {
    if (alive_[w]) workers_[w]->cancel(m.id);
    return;
  }
  if (!dispatcher_->current_on(m.id, m.worker, m.attempt)) return;  // given up while in transit
  if (!alive_[w]) {
    // Sent before the router knew: the connection is refused.
    dispatcher_->attempt_failed(m.id, m.worker,
                                reasons::worker_unreachable(worker_name(m.worker), reasons::kConnectionRefused),
                                /*hard=*/true, now);
    return;
  }
  Request scratch;
  workers_[w]->submit(versions_->chosen(requests_[m.id], scratch));
}

void EmbeddedRouter::apply_fault(const FaultEvent& e, TimeUs now) {
  const Fault& f = *e.fault;
  const int w = f.worker;
  applied_.push_back({{"type", fault_type_name(f.type)},
                      {"worker", w},
                      {"event", e.starts ? "start" : "end"},
                      {"at_s", seconds(e.at_us)},
                      {"applied_s", seconds(now)}});
  switch (f.type) {
    case FaultType::kCrash:
      e.starts ? crash(w, now) : recover(w, now);
      break;
    case FaultType::kSlowdown:
      slowdown_[std::size_t(w)] = e.starts ? f.factor : 1.0;
      if (alive_[std::size_t(w)]) workers_[std::size_t(w)]->set_slowdown(slowdown_[std::size_t(w)]);
      break;
    case FaultType::kLink:
      links_.set_link(w, e.starts ? f.latency_us : 0, e.starts ? f.loss : 0);
      break;
    case FaultType::kPartition:
      if (e.starts) {
        links_.set_partitioned(w, true);
      } else {
        heal(w, now);
      }
      break;
    case FaultType::kRouterRestart:
      if (e.starts) {
        restart_router(now);
      } else {
        dispatcher_->router_up();
      }
      break;
    case FaultType::kDeviceError:
      device_error_[std::size_t(w)] = e.starts;
      if (alive_[std::size_t(w)]) workers_[std::size_t(w)]->set_device_error(e.starts);
      if (!e.starts) recover(w, now);  // restarts it if the fault failed it
      break;
  }
}

void EmbeddedRouter::crash(int w, TimeUs now) {
  const std::size_t i = std::size_t(w);
  if (!alive_[i] && !crashed_[i]) return;  // not running (stopped or starting): nothing to crash
  lost_on_crash_ += std::int64_t(workers_[i]->crash().size());
  alive_[i] = false;
  crashed_[i] = true;
  held_[i].clear();
  dispatcher_->worker_crashed(w, now);
}

// The worker failed (its failed step's requests ended dropped before this news): what it holds
// goes back to the Dispatcher as failed attempts, and it restarts as a crashed worker recovers,
// as a supervisor restarts a failed worker process: at once, or when its device_error fault ends.
// Not after a policy's error, which the run raises (a restarted worker would fail the same way).
void EmbeddedRouter::failed(int w, const std::string& failure, TimeUs now) {
  const std::size_t i = std::size_t(w);
  // News of an engine that is gone (crashed meanwhile, or already replaced) changes nothing.
  if (!alive_[i] || workers_[i]->failure() != failure) return;
  workers_[i]->crash();
  alive_[i] = false;
  crashed_[i] = true;
  held_[i].clear();
  applied_.push_back({{"type", "failure"}, {"worker", w}, {"event", "failed"}, {"reason", failure},
                      {"applied_s", seconds(now)}});
  dispatcher_->worker_failed(w, failure, now);
  if (policy_error().empty() && !device_error_[i]) load(w, -1, now);
}

// The restarted worker loads its model on its own thread, as a restarted process would: the
// router goes on routing (and beating the others' heartbeats) meanwhile.
void EmbeddedRouter::recover(int w, TimeUs now) {
  if (crashed_[std::size_t(w)]) load(w, -1, now);  // else it was stopped meanwhile, or never crashed
}

void EmbeddedRouter::rejoin(int w, std::unique_ptr<WorkerEngine> engine, TimeUs now) {
  const std::size_t i = std::size_t(w);
  if (!crashed_[i]) return;  // drained and stopped while it reloaded: the engine is not needed
  workers_[i] = std::move(engine);
  start_worker(w);
  alive_[i] = true;
  crashed_[i] = false;
  applied_.push_back({{"type", "crash"}, {"worker", w}, {"event", "rejoined"}, {"applied_s", seconds(now)}});
}

void EmbeddedRouter::heal(int w, TimeUs now) {
  links_.set_partitioned(w, false);
  std::deque<std::size_t> held;
  held.swap(held_[std::size_t(w)]);
  for (std::size_t index : held) {
    const Message& m = messages_[index];
    const TimeUs at = links_.delivery_us(w, direction_of(m.kind), now);
    if (at <= now) {
      deliver(m, now);
    } else {
      timers_.push(Timer{at, timer_order_++, TimerKind::kDeliver, index, {}});
    }
  }
}

void EmbeddedRouter::restart_router(TimeUs now) { dispatcher_->router_down(now); }

// A heartbeat is the worker's published view reaching the router; a partition or a crash stops
// them. Their own link delay is not modeled: the monitor's misses are counted in intervals.
void EmbeddedRouter::heartbeats(TimeUs now) {
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    if (!alive_[w]) {
      if (!crashed_[w]) health_.beat(int(w), now);  // not running (stopped, starting): not monitored
      continue;
    }
    if (links_.partitioned(int(w))) continue;
    last_views_[w] = workers_[w]->view();
    health_.beat(int(w), now);
  }
  next_heartbeat_us_ = now + protection_.health.heartbeat.interval_us;
}

void EmbeddedRouter::fail_unreachable(TimeUs now) {
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    if (dispatcher_->attempts_on(int(w)) == 0 || health_.heartbeat().health(int(w), now) != Health::kDown) continue;
    dispatcher_->heartbeat_lost(int(w), now);
  }
}

nlohmann::json EmbeddedRouter::faults_json(const FaultScenario& scenario,
                                           const std::vector<std::string>& worker_names) const {
  nlohmann::json j = fault_report(scenario, health_.changes(), worker_names);
  j["applied"] = applied_;
  j["requests_lost_on_crash"] = lost_on_crash_;
  return j;
}

}  // namespace twinfer::runtime
