// Elastic pools in the embedded runtime: scaling decisions on the router's clock, cold starts as
// real model loads on loader threads held back to the modeled cold start, drains that stop and
// destroy a worker's engine once it holds nothing.
#include "runtime/engine/embedded_router.h"

#include <algorithm>
#include <cassert>

namespace twinfer::runtime {

// Both a recovery (epoch < 0) and a cold start build the engine off the router thread, so that
// the router goes on routing and beating heartbeats while the model loads.
void EmbeddedRouter::load(int w, int epoch, TimeUs now) {
  const std::size_t record = loads_.size();
  loads_.push_back(LoadRecord{w, epoch < 0 ? "recovery" : "cold_start", now});
  if (epoch >= 0) start_record_[std::size_t(w)] = record;
  loaders_.emplace_back([this, w, epoch, record] {
    Loaded loaded;
    loaded.worker = w;
    loaded.epoch = epoch;
    loaded.record = record;
    std::string error;
    try {
      loaded.engine = parts_.make_worker(w, callbacks());
    } catch (const std::exception& e) {
      error = "worker " + worker_name(w) + (epoch < 0 ? " could not restart: " : " could not start: ") + e.what();
    }
    loaded.loaded_us = parts_.clock->now_us();
    {
      std::lock_guard<std::mutex> lock(mail_mu_);
      loaded_.push_back(std::move(loaded));
      if (!error.empty()) load_error_ = error;
      Message m;
      m.kind = Kind::kReady;
      m.worker = w;
      m.epoch = epoch;
      mail_.push_back(std::move(m));
    }
    mail_cv_.notify_one();
  });
}

void EmbeddedRouter::take_loaded(const Message& m, TimeUs now) {
  Loaded loaded;
  {
    std::lock_guard<std::mutex> lock(mail_mu_);
    auto it = std::find_if(loaded_.begin(), loaded_.end(),
                           [&](const Loaded& l) { return l.worker == m.worker && l.epoch == m.epoch; });
    assert(it != loaded_.end());
    loaded = std::move(*it);
    loaded_.erase(it);
  }
  loads_[loaded.record].loaded_us = loaded.loaded_us;
  if (loaded.epoch < 0) {
    rejoin(loaded.worker, std::move(loaded.engine), now);
  } else {
    cold_start_loaded(std::move(loaded), now);
  }
}

// The worker is ready at the modeled cold start after the decision, or now if loading took longer.
void EmbeddedRouter::cold_start_loaded(Loaded loaded, TimeUs now) {
  const int w = loaded.worker;
  // A start cancelled meanwhile: the engine, never started, is destroyed on return.
  if (lifecycle(w) != Lifecycle::kStarting || elastic_->start_epoch(w) != loaded.epoch) return;
  workers_[std::size_t(w)] = std::move(loaded.engine);
  const TimeUs ready_at = start_decided_us_[std::size_t(w)] + elastic_->cold_start_us(w);
  if (ready_at <= now) return become_ready(w, loaded.epoch, now);
  Timer t;
  t.at_us = ready_at;
  t.order = timer_order_++;
  t.kind = TimerKind::kColdStart;
  t.worker = w;
  t.epoch = loaded.epoch;
  timers_.push(t);
}

void EmbeddedRouter::become_ready(int w, int epoch, TimeUs now) {
  const std::size_t i = std::size_t(w);
  if (!workers_[i]) return;  // cancelled: its engine is gone
  {
    std::lock_guard<std::mutex> lock(*parts_.recorder_mu);
    if (!elastic_->ready(w, epoch, now)) return;  // a stale start (cancelled, perhaps started again)
  }
  elastic_dated_us_ = now;
  ready_since_us_[i] = now;
  start_worker(w);
  alive_[i] = true;
  last_views_[i] = workers_[i]->view();
  health_.beat(w, now);
  loads_[start_record_[i]].ready_us = now;
}

// The decision is dated at its due time, so that autoscalers see the regular intervals they would
// see in the simulator (their windows compare times) however late this thread runs; it reads the
// workers as they are now. Never before a change already dated later (a worker that became ready
// while this thread was late): the pools' series stay in time order.
void EmbeddedRouter::decide(TimeUs now) {
  const TimeUs dated_us = std::max(next_decision_us_, elastic_dated_us_);
  ClusterView view{dated_us, &views(now)};
  std::vector<LifecycleChange> changes;
  {
    std::lock_guard<std::mutex> lock(*parts_.recorder_mu);
    changes = elastic_->decide(view, busy_us_);
  }
  for (const LifecycleChange& c : changes) apply_change(c, dated_us, now);
  // A router thread late by more than an interval decides once, not once per missed interval.
  next_decision_us_ += elastic_->interval_us();
  if (next_decision_us_ <= now) next_decision_us_ = now + elastic_->interval_us();
}

// Ready and draining need nothing here: routers read the lifecycle from the views, and
// stop_drained() stops a draining worker once it holds nothing.
void EmbeddedRouter::apply_change(const LifecycleChange& change, TimeUs decided_us, TimeUs now) {
  const std::size_t i = std::size_t(change.worker);
  switch (change.to) {
    case Lifecycle::kStarting:
      start_decided_us_[i] = decided_us;
      load(change.worker, elastic_->start_epoch(change.worker), now);
      break;
    case Lifecycle::kStopped:  // a cancelled start: its engine, if loaded already, never ran
      assert(!alive_[i]);
      workers_[i].reset();
      break;
    case Lifecycle::kReady:
    case Lifecycle::kDraining:
      break;
  }
}

// A draining worker holds nothing once no attempt is in flight to or on it (the router's list is
// complete) and its engine has let go of what the router cancelled. A partitioned worker cannot
// be told to stop: it waits for the heal.
void EmbeddedRouter::stop_drained(TimeUs now) {
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    if (lifecycle(int(w)) != Lifecycle::kDraining || dispatcher_->attempts_on(int(w)) > 0 || links_.partitioned(int(w))) continue;
    if (alive_[w] && workers_[w]->view().outstanding() > 0) continue;
    {
      std::lock_guard<std::mutex> lock(*parts_.recorder_mu);
      elastic_->stopped(int(w), now);
    }
    elastic_dated_us_ = now;
    if (workers_[w]) {
      workers_[w]->stop();
      workers_[w].reset();
    }
    alive_[w] = false;
    crashed_[w] = false;  // a pending recovery is not needed any more
    last_views_[w] = idle_view(int(w));
  }
}

nlohmann::json EmbeddedRouter::elastic_json(std::int64_t completed) const { return elastic_->summary(completed); }

nlohmann::json EmbeddedRouter::loads_json() const {
  nlohmann::json out = nlohmann::json::array();
  for (const LoadRecord& l : loads_) {
    nlohmann::json j = {{"worker", l.worker}, {"why", l.why}};
    if (l.begun_us >= 0) j["begun_s"] = s_from_us(l.begun_us);
    if (l.loaded_us >= 0) j["loaded_s"] = s_from_us(l.loaded_us);
    if (l.why == "cold_start") {
      if (l.ready_us >= 0) {
        j["ready_s"] = s_from_us(l.ready_us);
      } else {
        j["discarded"] = true;
      }
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace twinfer::runtime
