#include "serving/health/heartbeat_monitor.h"

#include <algorithm>
#include <cassert>
#include <limits>

namespace twinfer {

HeartbeatOptions read_heartbeat_options(JsonParams& p) {
  HeartbeatOptions o;
  double interval_ms = ms_from_us(o.interval_us);
  p.get("interval_ms", interval_ms);
  p.require(interval_ms > 0, "interval_ms", "must be > 0");
  o.interval_us = us_from_ms(interval_ms);
  p.require(o.interval_us >= 1, "interval_ms", "must be at least 0.001 (1 us)");
  p.get("suspect_after_misses", o.suspect_after_misses);
  p.get("down_after_misses", o.down_after_misses);
  p.require(o.suspect_after_misses >= 1, "suspect_after_misses", "must be >= 1");
  p.require(o.down_after_misses >= o.suspect_after_misses, "down_after_misses",
            "must be >= suspect_after_misses (" + std::to_string(o.suspect_after_misses) + ")");
  return o;
}

HeartbeatMonitor::HeartbeatMonitor(std::size_t workers, HeartbeatOptions options, TimeUs start_us)
    : options_(options), workers_(workers, Worker{start_us, false}) {
  assert(options_.interval_us > 0 && options_.suspect_after_misses >= 1 &&
         options_.down_after_misses >= options_.suspect_after_misses);
}

const HeartbeatMonitor::Worker& HeartbeatMonitor::at(int worker) const {
  assert(worker >= 0 && static_cast<std::size_t>(worker) < workers_.size());
  return workers_[static_cast<std::size_t>(worker)];
}

HeartbeatMonitor::Worker& HeartbeatMonitor::at(int worker) {
  return const_cast<Worker&>(static_cast<const HeartbeatMonitor&>(*this).at(worker));
}

void HeartbeatMonitor::beat(int worker, TimeUs now_us) {
  Worker& w = at(worker);
  // A beat delivered out of order must not move the last beat back.
  w.last_beat_us = std::max(w.last_beat_us, now_us);
  w.marked_down = false;
}

void HeartbeatMonitor::mark_down(int worker, TimeUs now_us) {
  (void)now_us;
  at(worker).marked_down = true;
}

int HeartbeatMonitor::misses(int worker, TimeUs now_us) const {
  const TimeUs since_us = now_us - at(worker).last_beat_us;
  if (since_us <= 0) return 0;
  const TimeUs n = since_us / options_.interval_us;
  return n > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max() : static_cast<int>(n);
}

bool HeartbeatMonitor::marked_down(int worker) const { return at(worker).marked_down; }

Health HeartbeatMonitor::health(int worker, TimeUs now_us) const {
  if (at(worker).marked_down) return Health::kDown;
  const int n = misses(worker, now_us);
  if (n >= options_.down_after_misses) return Health::kDown;
  if (n >= options_.suspect_after_misses) return Health::kSuspect;
  return Health::kUp;
}

TimeUs HeartbeatMonitor::next_change_us(int worker, TimeUs now_us) const {
  if (health(worker, now_us) == Health::kDown) return kNever;
  const int n = misses(worker, now_us);
  const int next_misses = n < options_.suspect_after_misses ? options_.suspect_after_misses
                                                            : options_.down_after_misses;
  return at(worker).last_beat_us + options_.interval_us * next_misses;
}

}  // namespace twinfer
