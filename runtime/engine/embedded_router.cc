#include "runtime/engine/embedded_router.h"

#include "policies/faults/fault_report.h"

#include <algorithm>
#include <cassert>
#include <thread>

#include "policies/cluster_view.h"
#include "policies/error.h"
#include "policies/lifecycle_reasons.h"
#include "policies/protection.h"
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
      retry_(protection_.retry, parts_.seed + 7919),
      links_(parts_.config->cluster.instances.size(), parts_.seed + 104729),
      flights_(requests_.size()) {
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
  on_worker_.resize(n);
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
  cb.on_batch = [this](const BatchRecord& b) {
    std::lock_guard<std::mutex> lock(*parts_.recorder_mu);
    parts_.recorder->batch(b);
    busy_us_[std::size_t(b.worker)] += b.end_us - b.start_us;
    ++steps_;
  };
  return cb;
}

void EmbeddedRouter::start_worker(int w) {
  const std::size_t i = std::size_t(w);
  workers_[i]->set_slowdown(slowdown_[i]);
  workers_[i]->start(i < parts_.cores.size() ? parts_.cores[i] : -1);
}

void EmbeddedRouter::run() {
  // Time zero of the run is now, after the weights were built: trace times and run times coincide.
  parts_.clock->reset();
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    if (workers_[w]) start_worker(int(w));
  }
  next_heartbeat_us_ = 0;
  while (ended_ < requests_.size()) {
    const TimeUs now = parts_.clock->now_us();
    take_mail(now);
    fire_due(now);
    if (ended_ == requests_.size()) break;
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
      send(std::move(m), now);
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
      arrive(requests_[next_arrival_++], now);
    } else if (timer_at == first) {
      Timer t = timers_.top();
      timers_.pop();
      if (t.kind == TimerKind::kDeliver) {
        deliver(messages_[t.message], now);
      } else if (t.kind == TimerKind::kRetry) {
        if (!flights_[t.id].ended) route(t.id, now);
      } else if (t.kind == TimerKind::kColdStart) {
        become_ready(t.worker, t.epoch, now);
      } else if (!flights_[t.id].ended) {
        // The client gave up at its deadline, however late this thread notices.
        cancel_on_worker(t.id, now);
        end_request(t.id, Outcome::kTimedOut, reasons::no_answer_within(protection_.request_timeout_us), t.at_us);
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

void EmbeddedRouter::arrive(const Request& arrived, TimeUs now) {
  // The split's schedule is read at the request's arrival time, not at this thread's (possibly
  // late) clock: the same request goes to the same version as in the simulator.
  if (router_down_) {
    end_request(arrived.id, Outcome::kRejected, reasons::kRouterUnavailable, now);
    return;
  }
  ClusterView view{now, &views(now)};
  Request scratch;
  const Request& r = versions_->resolve(arrived, arrived.arrival_us, view.all(), scratch);
  AdmissionDecision ad =
      admit_request(r, view, queued_, protection_, *parts_.policies->shed, *parts_.policies->admission);
  if (!ad.admitted) {
    end_request(r.id, Outcome::kRejected, ad.reason, now);
    return;
  }
  flights_[r.id].admitted = true;
  ++queued_;
  retry_.on_request(now);
  if (protection_.request_timeout_us > 0) {
    timers_.push(Timer{r.arrival_us + protection_.request_timeout_us, timer_order_++, TimerKind::kTimeout, r.id, 0});
  }
  route(r.id, now);
}

void EmbeddedRouter::route(RequestId id, TimeUs now) {
  ClusterView view{now, &views(now)};
  Request scratch;
  const Request& r = versions_->resolve(requests_[id], now, view.all(), scratch);  // a retry keeps its version
  Flight& f = flights_[id];
  RouteDecision rd = route_checked(*parts_.policies->router, r, view);
  if (rd.rejected()) {
    // A retry that finds no worker is a request the cluster accepted and then lost.
    if (f.attempts == 0) {
      end_request(id, Outcome::kRejected, rd.reason, now);
    } else {
      end_request(id, Outcome::kDropped, reasons::no_worker_to_retry_on(rd.reason), now);
    }
    return;
  }
  if (f.attempts == 0) elastic_->on_routed(rd.worker, r);
  ++f.attempts;
  f.worker = rd.worker;
  f.on_worker = true;
  f.sent_us = now;
  on_worker_[std::size_t(rd.worker)].insert(id);
  health_.call_sent(rd.worker, now);
  {
    std::lock_guard<std::mutex> lock(*parts_.recorder_mu);
    parts_.recorder->routed(id, rd.worker);
  }
  Message m;
  m.kind = Kind::kSubmit;
  m.worker = rd.worker;
  m.id = id;
  m.attempt = f.attempts;
  send(std::move(m), now);
}

// Every hand-off crosses the link model, so that messages of one direction keep their order.
void EmbeddedRouter::send(Message m, TimeUs now) {
  const int w = m.worker;
  messages_.push_back(std::move(m));
  const std::size_t index = messages_.size() - 1;
  if (links_.partitioned(w)) {
    held_[std::size_t(w)].push_back(index);
    return;
  }
  const auto direction = messages_[index].kind == Kind::kEnd ? LinkDirection::kToRouter : LinkDirection::kToWorker;
  const TimeUs at = links_.delivery_us(w, direction, now);
  if (at <= now) {
    deliver(messages_[index], now);
  } else {
    timers_.push(Timer{at, timer_order_++, TimerKind::kDeliver, messages_[index].id, index});
  }
}

void EmbeddedRouter::deliver(const Message& m, TimeUs now) {
  const std::size_t w = std::size_t(m.worker);
  if (links_.partitioned(m.worker)) {
    held_[w].push_back(std::size_t(&m - messages_.data()));
    return;
  }
  if (m.kind == Kind::kEnd) {
    answer(m, now);
    return;
  }
  if (!alive_[w]) return;  // the crash already failed every attempt sent to it
  if (m.kind == Kind::kCancel) {
    workers_[w]->cancel(m.id);
    return;
  }
  const Flight& f = flights_[m.id];
  if (f.ended || f.attempts != m.attempt || !f.on_worker) return;  // given up while in transit
  Request scratch;
  workers_[w]->submit(versions_->chosen(requests_[m.id], scratch));
}

void EmbeddedRouter::answer(const Message& m, TimeUs now) {
  Flight& f = flights_[m.id];
  if (f.ended || !f.on_worker || f.worker != m.worker) return;  // an attempt the router gave up on
  on_worker_[std::size_t(m.worker)].erase(m.id);
  f.on_worker = false;
  health_.call_succeeded(m.worker, now - f.sent_us, now);
  end_request(m.id, m.ended.outcome, m.ended.reason, now, &m.ended);
}

void EmbeddedRouter::fail_attempt(RequestId id, const std::string& failure, TimeUs now) {
  Flight& f = flights_[id];
  on_worker_[std::size_t(f.worker)].erase(id);
  f.on_worker = false;
  RetryDecision d = retry_.on_failure(requests_[id], f.attempts, failure, now);
  if (!d.retry) {
    end_request(id, Outcome::kDropped, d.reason, now);
    return;
  }
  timers_.push(Timer{std::max(d.at_us, now), timer_order_++, TimerKind::kRetry, id, 0});
}

void EmbeddedRouter::cancel_on_worker(RequestId id, TimeUs now) {
  Flight& f = flights_[id];
  if (!f.on_worker) return;
  on_worker_[std::size_t(f.worker)].erase(id);
  f.on_worker = false;
  send_cancel(f.worker, id, now);
}

void EmbeddedRouter::send_cancel(int w, RequestId id, TimeUs now) {
  Message m;
  m.kind = Kind::kCancel;
  m.worker = w;
  m.id = id;
  send(std::move(m), now);
}

void EmbeddedRouter::end_request(RequestId id, Outcome outcome, const std::string& reason, TimeUs now,
                                 const Finished* ended) {
  Flight& f = flights_[id];
  assert(!f.ended);
  f.ended = true;
  if (f.admitted) --queued_;
  ++ended_;
  std::lock_guard<std::mutex> lock(*parts_.recorder_mu);
  if (outcome == Outcome::kRejected) {
    parts_.recorder->reject(id, now, reason);
  } else if (ended != nullptr) {
    parts_.recorder->finished(ended->seq, f.worker, outcome, reason, ended->seq.first_token_us, now);
  } else {
    parts_.recorder->lost(id, outcome, reason, now);
  }
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
        router_down_ = false;
      }
      break;
  }
}

void EmbeddedRouter::crash(int w, TimeUs now) {
  const std::size_t i = std::size_t(w);
  if (!alive_[i] && !crashed_[i]) return;  // not running (stopped or starting): nothing to crash
  lost_on_crash_ += std::int64_t(workers_[i]->crash().size());
  alive_[i] = false;
  crashed_[i] = true;
  const std::string failure = reasons::worker_crashed(worker_name(w));
  health_.call_failed(w, now, failure, /*hard=*/true);
  // Attempts in transit to it are lost as well: the router's list, not the worker's, is complete.
  const std::set<RequestId> lost = on_worker_[i];
  for (RequestId id : lost) fail_attempt(id, failure, now);
  held_[i].clear();
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
    const auto direction = m.kind == Kind::kEnd ? LinkDirection::kToRouter : LinkDirection::kToWorker;
    const TimeUs at = links_.delivery_us(w, direction, now);
    if (at <= now) {
      deliver(m, now);
    } else {
      timers_.push(Timer{at, timer_order_++, TimerKind::kDeliver, m.id, index});
    }
  }
}

void EmbeddedRouter::restart_router(TimeUs now) {
  router_down_ = true;
  for (RequestId id = 0; id < flights_.size(); ++id) {
    const Flight& f = flights_[id];
    if (!f.admitted || f.ended) continue;
    cancel_on_worker(id, now);
    end_request(id, Outcome::kDropped, reasons::kRouterRestarted, now);
  }
}

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
    if (on_worker_[w].empty() || health_.heartbeat().health(int(w), now) != Health::kDown) continue;
    const std::string failure = reasons::worker_unreachable(worker_name(int(w)), reasons::kHeartbeatLost);
    const std::set<RequestId> lost = on_worker_[w];
    for (RequestId id : lost) {
      send_cancel(int(w), id, now);  // waits for the partition to heal, ahead of any retry sent there
      fail_attempt(id, failure, now);
    }
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
