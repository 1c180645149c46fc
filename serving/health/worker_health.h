// The health drivers hold: heartbeats plus one circuit breaker per worker, combined into the
// Health routers see, with a log of its transitions.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "policies/cluster_view.h"
#include "serving/health/circuit_breaker.h"
#include "serving/health/heartbeat_monitor.h"
#include "core/time.h"

namespace twinfer {

struct HealthOptions {
  HeartbeatOptions heartbeat;
  CircuitBreakerOptions breaker;
};

// One transition of one worker's combined health. `why` names what moved it, e.g.
// "missed 2 heartbeats", "call failed: connection refused", "breaker open: 5 consecutive failures",
// "breaker half-open", "breaker closed", "heartbeat"; when two causes move it at once, both,
// joined by "; ".
struct HealthChange {
  TimeUs at_us = 0;
  int worker = 0;
  Health from = Health::kUp;
  Health to = Health::kUp;
  std::string why;
};

const char* health_name(Health health);

// A worker's health is the worse of its heartbeat health and its breaker's: open -> kDown;
// half-open with every probe slot in use -> kDown; half-open with room -> kUp (routers prefer up
// workers, so the breaker's probes are real requests); closed -> kUp.
// health() is always current; changes() is what refresh() saw, so drivers call refresh() after
// each input and at next_change_us(). Worker indices are 0..workers-1. Successful calls do not
// count as heartbeats (drivers call beat() for any answer that proves liveness).
// Thread safety: none (drivers serialize calls).
class WorkerHealth {
 public:
  WorkerHealth(std::size_t workers, HealthOptions options, TimeUs start_us);

  void beat(int w, TimeUs now);
  void call_sent(int w, TimeUs now);
  void call_succeeded(int w, TimeUs latency_us, TimeUs now);
  // hard: connection refused or reset: the heartbeat marks the worker down as well.
  void call_failed(int w, TimeUs now, const std::string& error, bool hard);

  Health health(int w, TimeUs now) const;
  // Whether worker w may be sent a call now (its breaker allows it). Routers see this through
  // health(); drivers sending probes or retries directly may ask.
  bool allow_call(int w, TimeUs now) const { return breakers_.at(static_cast<std::size_t>(w)).allow(now); }
  // Earliest time (> now) any worker's health may change without new input; kNever if none.
  TimeUs next_change_us(TimeUs now) const;

  // Appends to changes() every worker whose health differs from what the last refresh() saw.
  void refresh(TimeUs now);
  const std::vector<HealthChange>& changes() const { return changes_; }

  // REQUIRES: views.size() == the number of workers. Writes views[i].health = health(i, now), and
  // touches in `changes` (when given) each worker whose health it changed.
  void apply(std::vector<WorkerView>& views, TimeUs now, ViewChanges* changes = nullptr) const;

  const HeartbeatMonitor& heartbeat() const { return heartbeat_; }
  const CircuitBreaker& breaker(int w) const { return breakers_.at(static_cast<std::size_t>(w)); }
  std::size_t size() const { return breakers_.size(); }

 private:
  // The two parts of one worker's health at one time.
  struct Parts {
    Health heartbeat = Health::kUp;
    Health breaker = Health::kUp;
    Health combined() const;
  };
  Parts parts(int w, TimeUs now) const;
  Health breaker_health(int w, TimeUs now) const;
  std::string heartbeat_why(int w, Health to, TimeUs now) const;
  std::string breaker_why(int w, Health to, TimeUs now) const;
  std::string why(int w, const Parts& before, const Parts& after, TimeUs now) const;

  HeartbeatMonitor heartbeat_;
  std::vector<CircuitBreaker> breakers_;
  std::vector<std::string> last_hard_error_;
  std::vector<Parts> seen_;  // as of the last refresh()
  std::vector<HealthChange> changes_;
};

}  // namespace twinfer
