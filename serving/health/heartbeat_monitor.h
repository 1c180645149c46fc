// Worker liveness from heartbeats: up, suspect after a few missed beats, down after more.
#pragma once

#include <cstddef>
#include <vector>

#include "policies/cluster_view.h"
#include "core/params.h"
#include "core/time.h"

namespace twinfer {

struct HeartbeatOptions {
  TimeUs interval_us = 100'000;   // expected time between two beats of one worker
  int suspect_after_misses = 2;   // >= 1
  int down_after_misses = 5;      // >= suspect_after_misses
};

// Reads "interval_ms" (> 0), "suspect_after_misses" (>= 1) and "down_after_misses"
// (>= suspect_after_misses) from `p`. Does not call p.done().
HeartbeatOptions read_heartbeat_options(JsonParams& p);

// One per cluster. A worker has missed floor((now - last beat) / interval) beats; it is kSuspect from
// suspect_after_misses misses and kDown from down_after_misses misses, or from mark_down() until its
// next beat. Worker indices are 0..workers-1. Thread safety: none (drivers serialize calls).
class HeartbeatMonitor {
 public:
  // Every worker starts up, with its last beat at start_us.
  HeartbeatMonitor(std::size_t workers, HeartbeatOptions options, TimeUs start_us);

  // A heartbeat (or any state answer) of `worker` arrived: no misses, and a down worker is up again.
  void beat(int worker, TimeUs now_us);
  // A call to `worker` failed outright (connection refused or reset): down until its next beat.
  // now_us is not needed by the rule; it is taken for symmetry with the other inputs.
  void mark_down(int worker, TimeUs now_us);

  Health health(int worker, TimeUs now_us) const;
  // Whole intervals since the last beat (0 before the first interval ends).
  int misses(int worker, TimeUs now_us) const;
  // True from mark_down() until the next beat.
  bool marked_down(int worker) const;
  // When health() would next change if no beat arrives (> now_us); kNever when already down.
  TimeUs next_change_us(int worker, TimeUs now_us) const;

  std::size_t size() const { return workers_.size(); }
  const HeartbeatOptions& options() const { return options_; }

 private:
  struct Worker {
    TimeUs last_beat_us = 0;
    bool marked_down = false;
  };
  Worker& at(int worker);
  const Worker& at(int worker) const;

  HeartbeatOptions options_;
  std::vector<Worker> workers_;
};

}  // namespace twinfer
