#include "serving/health/circuit_breaker.h"

#include <cassert>
#include <cstdio>

#include "core/params.h"

namespace twinfer {
namespace {

std::string ratio_text(int part, int whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(part) / whole);
  return buf;
}

}  // namespace

CircuitBreakerOptions read_circuit_breaker_options(JsonParams& p) {
  CircuitBreakerOptions o;
  double slow_call_ms = ms_from_us(o.slow_call_us);
  double open_ms = ms_from_us(o.open_us);
  p.get("enabled", o.enabled);
  p.get("window", o.window);
  p.get("min_calls", o.min_calls);
  p.get("failure_ratio", o.failure_ratio);
  p.get("consecutive_failures", o.consecutive_failures);
  p.get("slow_call_ms", slow_call_ms);
  p.get("slow_call_ratio", o.slow_call_ratio);
  p.get("open_ms", open_ms);
  p.get("half_open_probes", o.half_open_probes);
  p.require(o.window >= 1, "window", "must be >= 1");
  p.require(o.min_calls >= 1 && o.min_calls <= o.window, "min_calls",
            "must be in [1, window] ([1, " + std::to_string(o.window) + "])");
  p.require(o.failure_ratio > 0 && o.failure_ratio <= 1, "failure_ratio", "must be in (0, 1]");
  p.require(o.consecutive_failures >= 1, "consecutive_failures", "must be >= 1");
  p.require(slow_call_ms >= 0, "slow_call_ms", "must be >= 0 (0: latency not considered)");
  p.require(o.slow_call_ratio > 0 && o.slow_call_ratio <= 1, "slow_call_ratio", "must be in (0, 1]");
  p.require(open_ms > 0, "open_ms", "must be > 0");
  p.require(o.half_open_probes >= 1, "half_open_probes", "must be >= 1");
  o.slow_call_us = us_from_ms(slow_call_ms);
  o.open_us = us_from_ms(open_ms);
  p.require(o.open_us >= 1, "open_ms", "must be at least 0.001 (1 us)");
  return o;
}

const char* breaker_state_name(BreakerState state) {
  switch (state) {
    case BreakerState::kClosed: return "closed";
    case BreakerState::kOpen: return "open";
    case BreakerState::kHalfOpen: return "half-open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(CircuitBreakerOptions options) : options_(options) {
  assert(options_.window >= 1 && options_.min_calls >= 1 && options_.consecutive_failures >= 1 &&
         options_.open_us > 0 && options_.half_open_probes >= 1);
}

BreakerState CircuitBreaker::state(TimeUs now_us) const {
  if (state_ == BreakerState::kOpen && now_us - opened_at_us_ >= options_.open_us) return BreakerState::kHalfOpen;
  return state_;
}

int CircuitBreaker::probes_in_flight(TimeUs now_us) const {
  // An open breaker whose time is up has sent no probe yet.
  return state_ == BreakerState::kHalfOpen && state(now_us) == BreakerState::kHalfOpen ? probes_in_flight_ : 0;
}

bool CircuitBreaker::allow(TimeUs now_us) const {
  switch (state(now_us)) {
    case BreakerState::kClosed: return true;
    case BreakerState::kOpen: return false;
    case BreakerState::kHalfOpen: return probes_in_flight(now_us) < options_.half_open_probes;
  }
  return true;
}

TimeUs CircuitBreaker::next_change_us(TimeUs now_us) const {
  return state(now_us) == BreakerState::kOpen ? opened_at_us_ + options_.open_us : kNever;
}

void CircuitBreaker::advance(TimeUs now_us) {
  if (state_ == BreakerState::kOpen && state(now_us) == BreakerState::kHalfOpen) {
    state_ = BreakerState::kHalfOpen;
    probes_in_flight_ = 0;
    probe_successes_ = 0;
  }
}

void CircuitBreaker::on_call(TimeUs now_us) {
  if (!options_.enabled) return;
  advance(now_us);
  if (state_ == BreakerState::kHalfOpen) ++probes_in_flight_;
}

void CircuitBreaker::on_success(TimeUs latency_us, TimeUs now_us) {
  if (!options_.enabled) return;
  advance(now_us);
  const bool slow = is_slow(latency_us);
  switch (state_) {
    case BreakerState::kOpen: return;
    case BreakerState::kHalfOpen:
      if (probes_in_flight_ > 0) --probes_in_flight_;
      // A probe that answers, but too slowly, says the worker is still sick.
      if (slow) return open(now_us, "slow probe (" + format_number(ms_from_us(latency_us)) + " ms)");
      if (++probe_successes_ >= options_.half_open_probes) close();
      return;
    case BreakerState::kClosed: {
      consecutive_failures_ = 0;
      record(Call{false, slow});
      std::string why = ratio_trip();
      if (!why.empty()) open(now_us, std::move(why));
      return;
    }
  }
}

void CircuitBreaker::on_failure(TimeUs now_us) {
  if (!options_.enabled) return;
  advance(now_us);
  switch (state_) {
    case BreakerState::kOpen: return;
    case BreakerState::kHalfOpen: return open(now_us, "probe failed");
    case BreakerState::kClosed: {
      ++consecutive_failures_;
      // A failure's latency is unknown to the breaker: it counts as failed, not as slow.
      record(Call{true, false});
      if (consecutive_failures_ >= options_.consecutive_failures) {
        return open(now_us, std::to_string(consecutive_failures_) + " consecutive failures");
      }
      std::string why = ratio_trip();
      if (!why.empty()) open(now_us, std::move(why));
      return;
    }
  }
}

void CircuitBreaker::record(Call call) {
  window_.push_back(call);
  window_failures_ += call.failed ? 1 : 0;
  window_slow_ += call.slow ? 1 : 0;
  if (static_cast<int>(window_.size()) > options_.window) {
    window_failures_ -= window_.front().failed ? 1 : 0;
    window_slow_ -= window_.front().slow ? 1 : 0;
    window_.pop_front();
  }
}

std::string CircuitBreaker::ratio_trip() const {
  const int calls = static_cast<int>(window_.size());
  if (calls < options_.min_calls) return {};
  const std::string over = " over the last " + std::to_string(calls) + " calls";
  // Division is correctly rounded, so 6 of 10 calls meets a ratio of 0.6 exactly.
  if (static_cast<double>(window_failures_) / calls >= options_.failure_ratio) {
    return "failure ratio " + ratio_text(window_failures_, calls) + " >= " + format_number(options_.failure_ratio) + over;
  }
  if (options_.slow_call_us > 0 && static_cast<double>(window_slow_) / calls >= options_.slow_call_ratio) {
    return "slow call ratio " + ratio_text(window_slow_, calls) + " >= " + format_number(options_.slow_call_ratio) +
           over + " (slow: >= " + format_number(ms_from_us(options_.slow_call_us)) + " ms)";
  }
  return {};
}

void CircuitBreaker::open(TimeUs now_us, std::string why) {
  state_ = BreakerState::kOpen;
  opened_at_us_ = now_us;
  open_reason_ = std::move(why);
  probes_in_flight_ = 0;
  probe_successes_ = 0;
}

void CircuitBreaker::close() {
  state_ = BreakerState::kClosed;
  window_.clear();
  window_failures_ = 0;
  window_slow_ = 0;
  consecutive_failures_ = 0;
  probes_in_flight_ = 0;
  probe_successes_ = 0;
}

}  // namespace twinfer
