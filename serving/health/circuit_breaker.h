// A per-worker circuit breaker: closed / open / half-open (resilience4j, Envoy outlier detection).
#pragma once

#include <deque>
#include <string>

#include "core/params.h"
#include "core/time.h"

namespace twinfer {

struct CircuitBreakerOptions {
  bool enabled = true;            // false: always closed, every call allowed
  int window = 20;                // last calls considered for the ratios, >= 1
  int min_calls = 10;             // calls in the window before a ratio may open it, in [1, window]
  double failure_ratio = 0.5;     // opens when failures / calls >= this, in (0, 1]
  int consecutive_failures = 5;   // opens after this many failures in a row, >= 1
  TimeUs slow_call_us = 0;        // a call at least this slow is slow; 0: latency not considered
  double slow_call_ratio = 0.8;   // opens when slow calls / calls >= this, in (0, 1]
  TimeUs open_us = 5'000'000;     // time open before probing (half-open), > 0
  int half_open_probes = 3;       // probes in flight at once, and successes needed to close, >= 1
};

// Reads the keys of CircuitBreakerOptions ("slow_call_ms", "open_ms" in milliseconds; the others as
// named) and checks their ranges. Does not call p.done().
CircuitBreakerOptions read_circuit_breaker_options(JsonParams& p);

enum class BreakerState { kClosed, kOpen, kHalfOpen };
const char* breaker_state_name(BreakerState state);

// Closed: every call is allowed; each outcome enters a window of the last `window` calls. It opens
// after consecutive_failures failures in a row, or once the window holds min_calls calls, when the
// failure ratio or (slow_call_us > 0) the slow-call ratio reaches its threshold.
// Open: no call is allowed until open_us after it opened; then it is half-open.
// Half-open: up to half_open_probes calls in flight at once; half_open_probes successes close it
// (window cleared), and any failure, or a probe slower than slow_call_us, reopens it.
// Outcomes arriving while open (calls sent before it opened) are ignored.
// Times passed in must not go back. Thread safety: none (drivers serialize calls).
class CircuitBreaker {
 public:
  explicit CircuitBreaker(CircuitBreakerOptions options);

  // Whether a call may be sent now: closed: true; open: false; half-open: while fewer than
  // half_open_probes probes are in flight.
  bool allow(TimeUs now_us) const;
  // A call was sent (counts half-open probes; an open breaker whose time is up becomes half-open).
  void on_call(TimeUs now_us);
  void on_success(TimeUs latency_us, TimeUs now_us);
  void on_failure(TimeUs now_us);

  BreakerState state(TimeUs now_us) const;
  // When state() would next change without new input (the end of the open time); kNever otherwise.
  TimeUs next_change_us(TimeUs now_us) const;
  // Half-open probes sent and not yet answered (0 in other states).
  int probes_in_flight(TimeUs now_us) const;
  // Why it last opened, e.g. "5 consecutive failures"; empty before it ever opened.
  const std::string& open_reason() const { return open_reason_; }
  const CircuitBreakerOptions& options() const { return options_; }

 private:
  struct Call {
    bool failed;
    bool slow;
  };
  // Carries out the open -> half-open move once its time is up.
  void advance(TimeUs now_us);
  void record(Call call);
  void open(TimeUs now_us, std::string why);
  void close();
  // Why the closed window calls for opening, or empty.
  std::string ratio_trip() const;
  bool is_slow(TimeUs latency_us) const { return options_.slow_call_us > 0 && latency_us >= options_.slow_call_us; }

  CircuitBreakerOptions options_;
  BreakerState state_ = BreakerState::kClosed;
  TimeUs opened_at_us_ = 0;
  std::deque<Call> window_;
  int window_failures_ = 0;
  int window_slow_ = 0;
  int consecutive_failures_ = 0;
  int probes_in_flight_ = 0;
  int probe_successes_ = 0;
  std::string open_reason_;
};

}  // namespace twinfer
