#include "serving/health/worker_health.h"

#include <algorithm>
#include <cassert>

namespace twinfer {
namespace {

Health worse(Health a, Health b) { return static_cast<int>(a) >= static_cast<int>(b) ? a : b; }
bool better(Health a, Health b) { return static_cast<int>(a) < static_cast<int>(b); }

}  // namespace

const char* health_name(Health health) {
  switch (health) {
    case Health::kUp: return "up";
    case Health::kSuspect: return "suspect";
    case Health::kDown: return "down";
  }
  return "unknown";
}

Health WorkerHealth::Parts::combined() const { return worse(heartbeat, breaker); }

WorkerHealth::WorkerHealth(std::size_t workers, HealthOptions options, TimeUs start_us)
    : heartbeat_(workers, options.heartbeat, start_us),
      breakers_(workers, CircuitBreaker(options.breaker)),
      last_hard_error_(workers),
      seen_(workers) {}

void WorkerHealth::beat(int w, TimeUs now) { heartbeat_.beat(w, now); }

void WorkerHealth::call_sent(int w, TimeUs now) { breakers_.at(static_cast<std::size_t>(w)).on_call(now); }

void WorkerHealth::call_succeeded(int w, TimeUs latency_us, TimeUs now) {
  breakers_.at(static_cast<std::size_t>(w)).on_success(latency_us, now);
}

void WorkerHealth::call_failed(int w, TimeUs now, const std::string& error, bool hard) {
  breakers_.at(static_cast<std::size_t>(w)).on_failure(now);
  if (!hard) return;
  heartbeat_.mark_down(w, now);
  last_hard_error_.at(static_cast<std::size_t>(w)) = error;
}

Health WorkerHealth::breaker_health(int w, TimeUs now) const {
  const CircuitBreaker& b = breakers_.at(static_cast<std::size_t>(w));
  switch (b.state(now)) {
    case BreakerState::kClosed: return Health::kUp;
    case BreakerState::kOpen: return Health::kDown;
    // Up while it has probe room: routers prefer up workers, so a suspect one would get no probes.
    case BreakerState::kHalfOpen: return b.allow(now) ? Health::kUp : Health::kDown;
  }
  return Health::kUp;
}

WorkerHealth::Parts WorkerHealth::parts(int w, TimeUs now) const {
  return Parts{heartbeat_.health(w, now), breaker_health(w, now)};
}

Health WorkerHealth::health(int w, TimeUs now) const { return parts(w, now).combined(); }

TimeUs WorkerHealth::next_change_us(TimeUs now) const {
  TimeUs next = kNever;
  for (std::size_t i = 0; i < breakers_.size(); ++i) {
    const int w = static_cast<int>(i);
    next = std::min({next, heartbeat_.next_change_us(w, now), breakers_[i].next_change_us(now)});
  }
  return next;
}

std::string WorkerHealth::heartbeat_why(int w, Health to, TimeUs now) const {
  if (to == Health::kUp) return "heartbeat";
  if (to == Health::kDown && heartbeat_.marked_down(w)) {
    return "call failed: " + last_hard_error_.at(static_cast<std::size_t>(w));
  }
  const int n = heartbeat_.misses(w, now);
  return "missed " + std::to_string(n) + (n == 1 ? " heartbeat" : " heartbeats");
}

std::string WorkerHealth::breaker_why(int w, Health to, TimeUs now) const {
  const CircuitBreaker& b = breakers_.at(static_cast<std::size_t>(w));
  switch (b.state(now)) {
    case BreakerState::kClosed:
      return "breaker closed: " + std::to_string(b.options().half_open_probes) + " probes succeeded";
    case BreakerState::kOpen: return "breaker open: " + b.open_reason();
    case BreakerState::kHalfOpen:
      if (to == Health::kDown) {
        return "breaker half-open: " + std::to_string(b.probes_in_flight(now)) + " probes in flight";
      }
      return "breaker half-open";
  }
  return {};
}

std::string WorkerHealth::why(int w, const Parts& before, const Parts& after, TimeUs now) const {
  // Worse: the parts that moved to the new (worst) level caused it. Better: the parts that left the
  // old worst level did. At least one part qualifies whenever the combined health moved.
  const Health from = before.combined();
  const Health to = after.combined();
  const bool worsened = better(from, to);
  auto caused = [&](Health part_before, Health part_after) {
    if (part_before == part_after) return false;
    return worsened ? part_after == to : part_before == from;
  };
  std::string out;
  if (caused(before.heartbeat, after.heartbeat)) out = heartbeat_why(w, after.heartbeat, now);
  if (caused(before.breaker, after.breaker)) out += (out.empty() ? "" : "; ") + breaker_why(w, after.breaker, now);
  assert(!out.empty());
  return out;
}

void WorkerHealth::refresh(TimeUs now) {
  for (std::size_t i = 0; i < seen_.size(); ++i) {
    const int w = static_cast<int>(i);
    const Parts now_parts = parts(w, now);
    const Health from = seen_[i].combined();
    const Health to = now_parts.combined();
    if (from != to) changes_.push_back(HealthChange{now, w, from, to, why(w, seen_[i], now_parts, now)});
    seen_[i] = now_parts;
  }
}

void WorkerHealth::apply(std::vector<WorkerView>& views, TimeUs now, ViewChanges* changes) const {
  assert(views.size() == breakers_.size());
  for (std::size_t i = 0; i < views.size(); ++i) {
    const Health h = health(static_cast<int>(i), now);
    if (changes && views[i].health != h) changes->touch(i);
    views[i].health = h;
  }
}

}  // namespace twinfer
