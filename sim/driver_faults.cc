// The simulator's faults (crashes, slowdowns, link faults, partitions, router restarts) and the
// protection that answers them (heartbeats and breakers, retries, request timeouts).
#include <algorithm>
#include <cmath>


#include "serving/faults/fault_report.h"
#include "serving/lifecycle_reasons.h"
#include "sim/driver.h"

namespace twinfer::sim {

namespace {

bool plan_contains(const BatchPlan& plan, RequestId id) {
  for (const BatchEntry& e : plan.entries) {
    if (e.id == id) return true;
  }
  return false;
}

}  // namespace

void Driver::schedule_faults() {
  fault_events_ = options_.faults.events();
  for (std::size_t k = 0; k < fault_events_.size(); ++k) {
    schedule(fault_events_[k].at_us, [this, k] { on_fault(fault_events_[k]); });
  }
}

void Driver::on_fault(const FaultEvent& e) {
  ++events_;
  ++next_fault_;
  const Fault& f = *e.fault;
  const TimeUs now = now_us();
  recorder_.marker(now, f.worker, std::string(fault_type_name(f.type)) + (e.starts ? "" : " over"), f.where);
  const int wi = f.worker;
  if (wi >= 0 && wi < static_cast<int>(workers_.size())) settle(wi);
  switch (f.type) {
    case FaultType::kCrash:
      return e.starts ? crash(wi) : recover(wi);
    case FaultType::kSlowdown:
      workers_[wi].slowdown = e.starts ? f.factor : 1.0;
      return;
    case FaultType::kLink:
      links_.set_link(wi, e.starts ? f.latency_us : 0, e.starts ? f.loss : 0.0);
      return;
    case FaultType::kPartition:
      if (!e.starts) return heal(wi);
      if (workers_[wi].silent_since_us == kNever) {
        health_.beat(wi, now);  // its last heartbeat got through
        workers_[wi].silent_since_us = now;
      }
      links_.set_partitioned(wi, true);
      return refresh_health();
    case FaultType::kRouterRestart:
      return e.starts ? dispatcher_->router_down(now) : dispatcher_->router_up();
    case FaultType::kDeviceError:
      workers_[wi].device_error = e.starts;
      if (!e.starts && workers_[wi].failed) {
        workers_[wi].failed = false;
        recover(wi);
      }
      return;
  }
}

void Driver::crash(int wi) { go_down(wi, reasons::worker_crashed(workers_[wi].instance->name)); }

// A step on a faulty device fails the worker, as WorkerEngine fails: the sequences it runs end
// dropped with the failure, and the rest goes back to the router with it.
void Driver::device_failed(int wi) {
  SimWorker& w = workers_[wi];
  const std::string failure = reasons::worker_failed(w.instance->name, reasons::kInjectedDeviceError);
  auto dropped = w.state->fail_running(failure);
  end_on_worker(wi, dropped, now_us());
  w.failed = true;
  go_down(wi, failure);
}

// The worker stops (crashed or failed): its batch, queue and KV cache are gone, and every attempt
// on it fails with `failure`.
void Driver::go_down(int wi, const std::string& failure) {
  SimWorker& w = workers_[wi];
  const TimeUs now = now_us();
  if (w.silent_since_us == kNever) w.silent_since_us = now;
  w.alive = false;
  update_utilization(wi);
  if (w.busy) {
    ++w.run_epoch;
    set_busy(wi, false);
  }
  w.has_tail = false;
  w.run_ends.clear();
  w.run_next = 0;
  w.wake_at_us = kNever;
  w.cancel_after_tail.clear();
  for (const Sequence& seq : w.state->clear()) left_worker(wi, seq.request.id);
  refresh_view(wi);
  // Its connections reset: the router knows at once, and every attempt on it failed.
  dispatcher_->worker_failed(wi, failure, now);
  refresh_health();
}

void Driver::recover(int wi) {
  SimWorker& w = workers_[wi];
  w.alive = true;
  if (!links_.partitioned(wi)) w.silent_since_us = kNever;
  refresh_view(wi);
  refresh_health();
  kick(wi);
}

void Driver::heal(int wi) {
  SimWorker& w = workers_[wi];
  links_.set_partitioned(wi, false);
  if (w.alive) w.silent_since_us = kNever;
  std::vector<std::function<void()>> held;
  held.swap(w.held);
  for (auto& message : held) message();
  refresh_health();
  kick(wi);
}

// The router's cancellation reaches the worker (after the partition, if there is one).
void Driver::cancel_on_worker(int wi, RequestId id) {
  SimWorker& w = workers_[wi];
  if (links_.partitioned(wi)) {
    w.held.push_back([this, wi, id] { cancel_on_worker(wi, id); });
    return;
  }
  if (!w.alive) return;
  settle(wi);
  // A sequence in the step under way leaves when the step ends.
  if (w.busy && ((w.has_tail && plan_contains(w.plan, id)) || (w.in_run() && w.state->is_running(id)))) {
    w.cancel_after_tail.push_back(id);
    return;
  }
  if (!w.state->cancel(id)) return;
  left_worker(wi, id);
  refresh_view(wi);
  kick(wi);
}

void Driver::apply_cancels(int wi) {
  SimWorker& w = workers_[wi];
  for (RequestId id : w.cancel_after_tail) {
    if (w.state->cancel(id)) left_worker(wi, id);
  }
  w.cancel_after_tail.clear();
  refresh_view(wi);
}

// Workers that are alive and reachable answer every heartbeat; silent ones (crashed, partitioned)
// stopped at silent_since_us, and the monitor counts their misses from there.
void Driver::refresh_health() {
  const TimeUs now = now_us();
  for (std::size_t wi = 0; wi < workers_.size(); ++wi) {
    if (workers_[wi].silent_since_us == kNever) health_.beat(int(wi), now);
  }
  health_.apply(views_, now, &view_changes_);
  health_.refresh(now);
  const auto& changes = health_.changes();
  for (; health_changes_seen_ < changes.size(); ++health_changes_seen_) {
    const HealthChange& c = changes[health_changes_seen_];
    recorder_.marker(c.at_us, c.worker, std::string("health ") + health_name(c.to), c.why);
  }
  schedule_health_check();
}

void Driver::schedule_health_check() {
  const TimeUs now = now_us();
  TimeUs next = kNever;
  for (std::size_t wi = 0; wi < workers_.size(); ++wi) {
    if (workers_[wi].silent_since_us != kNever) next = std::min(next, health_.heartbeat().next_change_us(int(wi), now));
  }
  if (next == kNever || (health_check_at_us_ > now && health_check_at_us_ <= next)) return;
  health_check_at_us_ = next;
  schedule(next, [this, next] {
    if (health_check_at_us_ != next) return;
    health_check_at_us_ = kNever;
    on_health_check();
  });
}

// A partitioned worker found down: the router gives up on the attempts it holds and retries them
// elsewhere; the worker learns of it when the partition heals.
void Driver::on_health_check() {
  ++events_;
  refresh_health();
  const TimeUs now = now_us();
  for (std::size_t wi = 0; wi < workers_.size(); ++wi) {
    if (dispatcher_->attempts_on(int(wi)) == 0 || health_.heartbeat().health(int(wi), now) != Health::kDown) continue;
    dispatcher_->heartbeat_lost(int(wi), now);
  }
}

TimeUs Driver::next_external_us() {
  const TimeUs now = now_us();
  TimeUs t = next_fault_ < fault_events_.size() ? fault_events_[next_fault_].at_us : kNever;
  t = std::min(t, dispatcher_->next_timer_us(now));
  if (health_check_at_us_ != kNever && health_check_at_us_ >= now) t = std::min(t, health_check_at_us_);
  return t;
}

nlohmann::json Driver::faults_summary() const {
  return fault_report(options_.faults, health_.changes(), recorder_.worker_names());
}

}  // namespace twinfer::sim
