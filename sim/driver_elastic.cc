// Elastic pools in the simulator: autoscaling decisions every interval, cold starts as timers,
// drains that stop a worker once it holds nothing.

#include "sim/driver.h"

namespace twinfer::sim {

void Driver::set_busy(int wi, bool busy) {
  SimWorker& w = workers_[wi];
  if (w.busy == busy) return;
  if (busy) {
    w.busy_since_us = now_us();
  } else {
    w.busy_us += now_us() - w.busy_since_us;
  }
  w.busy = busy;
}

void Driver::schedule_decision(TimeUs at_us) {
  schedule(at_us, [this] { on_decision(); });
}

// Decisions go on while requests remain; once the last has ended the run may finish.
void Driver::on_decision() {
  ++events_;
  const TimeUs now = now_us();
  std::vector<TimeUs> busy(workers_.size());
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    busy[i] = workers_[i].busy_us + (workers_[i].busy ? now - workers_[i].busy_since_us : 0);
  }
  apply_changes(elastic_->decide(view(), busy));
  if (next_arrival_us_ != kNever || dispatcher_->in_flight() > 0) schedule_decision(now + elastic_->interval_us());
}

void Driver::apply_changes(const std::vector<LifecycleChange>& changes) {
  for (const LifecycleChange& c : changes) {
    views_[c.worker].lifecycle = c.to;
    view_changes_.touch(std::size_t(c.worker));
    if (c.to == Lifecycle::kStarting) {
      const int epoch = elastic_->start_epoch(c.worker);
      schedule(now_us() + elastic_->cold_start_us(c.worker),
                 [this, wi = c.worker, epoch] { on_cold_start_done(wi, epoch); });
    } else if (c.to == Lifecycle::kDraining) {
      check_drained(c.worker);
    }
  }
}

void Driver::on_cold_start_done(int wi, int epoch) {
  ++events_;
  if (!elastic_->ready(wi, epoch, now_us())) return;  // cancelled while it started
  SimWorker& w = workers_[wi];
  views_[wi].lifecycle = Lifecycle::kReady;
  views_[wi].ready_since_us = now_us();
  views_[wi].utilization_ewma = 0;
  views_[wi].latency_ewma_us = 0;
  view_changes_.touch(std::size_t(wi));
  w.util_updated_us = now_us();
}

void Driver::check_drained(int wi) {
  if (views_[wi].lifecycle != Lifecycle::kDraining) return;
  const SimWorker& w = workers_[wi];
  if (w.busy || w.in_transit > 0 || !w.state->waiting().empty() || !w.state->running().empty()) return;
  elastic_->stopped(wi, now_us());
  views_[wi].lifecycle = Lifecycle::kStopped;
  view_changes_.touch(std::size_t(wi));
}

}  // namespace twinfer::sim
