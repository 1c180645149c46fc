#include "serving/health/circuit_breaker.h"

#include <functional>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::error_of;

// Ratios off (consecutive failures only) unless a test sets them.
CircuitBreakerOptions ratio_options(int window, int min_calls, double failure_ratio) {
  CircuitBreakerOptions o;
  o.window = window;
  o.min_calls = min_calls;
  o.failure_ratio = failure_ratio;
  o.consecutive_failures = 1000;
  return o;
}

void fail(CircuitBreaker& b, int n, TimeUs now = 0) {
  for (int i = 0; i < n; ++i) b.on_failure(now);
}
void succeed(CircuitBreaker& b, int n, TimeUs latency_us = 1000, TimeUs now = 0) {
  for (int i = 0; i < n; ++i) b.on_success(latency_us, now);
}

// A breaker opened at `at_us` by `consecutive` failures.
CircuitBreaker opened(CircuitBreakerOptions o, TimeUs at_us) {
  CircuitBreaker b(o);
  fail(b, o.consecutive_failures, at_us);
  EXPECT_EQ(b.state(at_us), BreakerState::kOpen);
  return b;
}

TEST(CircuitBreaker, OpensAfterConsecutiveFailures) {
  CircuitBreaker b{CircuitBreakerOptions{}};
  fail(b, 4);
  EXPECT_EQ(b.state(0), BreakerState::kClosed);
  EXPECT_TRUE(b.allow(0));
  fail(b, 1);
  EXPECT_EQ(b.state(0), BreakerState::kOpen);
  EXPECT_FALSE(b.allow(0));
  EXPECT_EQ(b.open_reason(), "5 consecutive failures");
}

TEST(CircuitBreaker, ASuccessBreaksTheRunButTheRatioStillCounts) {
  CircuitBreaker b{CircuitBreakerOptions{}};  // window 20, min_calls 10, ratio 0.5, 5 in a row
  fail(b, 4);
  succeed(b, 1);
  fail(b, 4);
  EXPECT_EQ(b.state(0), BreakerState::kClosed);  // 9 calls: below min_calls
  succeed(b, 1);                                 // 8 failures of 10
  EXPECT_EQ(b.state(0), BreakerState::kOpen);
  EXPECT_EQ(b.open_reason(), "failure ratio 0.80 >= 0.5 over the last 10 calls");
}

TEST(CircuitBreaker, FailureRatioOpensAtTheThresholdOnceMinCalls) {
  CircuitBreaker b(ratio_options(20, 10, 0.5));
  succeed(b, 5);
  fail(b, 4);
  succeed(b, 1);  // 4 of 10
  fail(b, 1);     // 5 of 11
  EXPECT_EQ(b.state(0), BreakerState::kClosed);
  fail(b, 1);     // 6 of 12 = 0.5
  EXPECT_EQ(b.state(0), BreakerState::kOpen);
  EXPECT_EQ(b.open_reason(), "failure ratio 0.50 >= 0.5 over the last 12 calls");
}

TEST(CircuitBreaker, WindowForgetsOldCalls) {
  CircuitBreaker b(ratio_options(4, 4, 0.5));
  fail(b, 1);
  succeed(b, 4);  // the failure slid out: S S S S
  fail(b, 1);     // S S S F
  EXPECT_EQ(b.state(0), BreakerState::kClosed);
  fail(b, 1);  // S S F F: 0.5 (over all 7 calls it would be 3/7)
  EXPECT_EQ(b.state(0), BreakerState::kOpen);
  EXPECT_EQ(b.open_reason(), "failure ratio 0.50 >= 0.5 over the last 4 calls");
}

TEST(CircuitBreaker, SlowCallRatioOpensOnlyWhenLatencyIsConsidered) {
  CircuitBreakerOptions o = ratio_options(4, 4, 1.0);
  o.slow_call_ratio = 0.5;
  CircuitBreaker ignoring_latency(o);
  succeed(ignoring_latency, 10, 10'000'000);
  EXPECT_EQ(ignoring_latency.state(0), BreakerState::kClosed);

  o.slow_call_us = 100'000;
  CircuitBreaker b(o);
  b.on_success(150'000, 0);
  b.on_success(50'000, 0);
  b.on_success(99'999, 0);
  EXPECT_EQ(b.state(0), BreakerState::kClosed);
  b.on_success(100'000, 0);  // at the bound counts as slow: 2 of 4
  EXPECT_EQ(b.state(0), BreakerState::kOpen);
  EXPECT_EQ(b.open_reason(), "slow call ratio 0.50 >= 0.5 over the last 4 calls (slow: >= 100 ms)");
}

TEST(CircuitBreaker, OpenUntilOpenTimeThenHalfOpen) {
  CircuitBreakerOptions o;  // open 5 s
  CircuitBreaker b = opened(o, 1000);
  EXPECT_EQ(b.next_change_us(1000), 5'001'000);
  EXPECT_EQ(b.state(5'000'999), BreakerState::kOpen);
  EXPECT_FALSE(b.allow(5'000'999));
  EXPECT_EQ(b.state(5'001'000), BreakerState::kHalfOpen);
  EXPECT_TRUE(b.allow(5'001'000));
  EXPECT_EQ(b.next_change_us(5'001'000), kNever);
  EXPECT_EQ(b.probes_in_flight(5'001'000), 0);
}

TEST(CircuitBreaker, HalfOpenLimitsProbesAndClosesAfterEnoughSuccesses) {
  CircuitBreakerOptions o;  // 3 probes
  CircuitBreaker b = opened(o, 0);
  const TimeUs t = o.open_us;
  b.on_call(t);
  b.on_call(t);
  EXPECT_TRUE(b.allow(t));
  b.on_call(t);
  EXPECT_FALSE(b.allow(t));
  EXPECT_EQ(b.probes_in_flight(t), 3);
  b.on_success(1000, t);
  EXPECT_TRUE(b.allow(t));
  EXPECT_EQ(b.state(t), BreakerState::kHalfOpen);
  b.on_success(1000, t);
  b.on_success(1000, t);
  EXPECT_EQ(b.state(t), BreakerState::kClosed);
  // The run of failures starts again from zero.
  fail(b, 4, t);
  EXPECT_EQ(b.state(t), BreakerState::kClosed);
}

TEST(CircuitBreaker, ClosingClearsTheWindow) {
  CircuitBreakerOptions o = ratio_options(10, 10, 0.5);
  CircuitBreaker b(o);
  fail(b, 10);
  ASSERT_EQ(b.state(0), BreakerState::kOpen);
  const TimeUs t = o.open_us;
  for (int i = 0; i < 3; ++i) b.on_call(t);
  succeed(b, 3, 1000, t);
  ASSERT_EQ(b.state(t), BreakerState::kClosed);
  fail(b, 1, t);  // with the old window kept this would be 10 failures of 10
  EXPECT_EQ(b.state(t), BreakerState::kClosed);
}

TEST(CircuitBreaker, AFailedProbeReopens) {
  CircuitBreakerOptions o;
  CircuitBreaker b = opened(o, 0);
  const TimeUs t = o.open_us + 7;
  b.on_call(t);
  b.on_failure(t);
  EXPECT_EQ(b.state(t), BreakerState::kOpen);
  EXPECT_EQ(b.open_reason(), "probe failed");
  EXPECT_EQ(b.next_change_us(t), t + o.open_us);
}

TEST(CircuitBreaker, ASlowProbeReopens) {
  CircuitBreakerOptions o;
  o.slow_call_us = 200'000;
  CircuitBreaker b = opened(o, 0);
  const TimeUs t = o.open_us;
  b.on_call(t);
  b.on_success(250'000, t);
  EXPECT_EQ(b.state(t), BreakerState::kOpen);
  EXPECT_EQ(b.open_reason(), "slow probe (250 ms)");
}

TEST(CircuitBreaker, OutcomesWhileOpenAreIgnored) {
  CircuitBreakerOptions o;
  CircuitBreaker b = opened(o, 0);
  b.on_failure(1000);  // a call sent before it opened: does not extend the open time
  succeed(b, 10, 1000, 2000);
  EXPECT_EQ(b.state(2000), BreakerState::kOpen);
  EXPECT_EQ(b.next_change_us(2000), o.open_us);
}

TEST(CircuitBreaker, DisabledNeverOpens) {
  CircuitBreakerOptions o;
  o.enabled = false;
  CircuitBreaker b(o);
  fail(b, 100);
  EXPECT_EQ(b.state(0), BreakerState::kClosed);
  EXPECT_TRUE(b.allow(0));
  EXPECT_EQ(b.next_change_us(0), kNever);
}

TEST(CircuitBreaker, StateNames) {
  EXPECT_STREQ(breaker_state_name(BreakerState::kClosed), "closed");
  EXPECT_STREQ(breaker_state_name(BreakerState::kOpen), "open");
  EXPECT_STREQ(breaker_state_name(BreakerState::kHalfOpen), "half-open");
}

TEST(CircuitBreaker, ReadsOptionsAndChecksRanges) {
  nlohmann::json j = {{"enabled", false}, {"window", 8},          {"min_calls", 4},
                      {"failure_ratio", 0.25}, {"consecutive_failures", 3}, {"slow_call_ms", 2.5},
                      {"slow_call_ratio", 0.9}, {"open_ms", 1500}, {"half_open_probes", 2}};
  JsonParams p(j, "cb", {});
  CircuitBreakerOptions o = read_circuit_breaker_options(p);
  EXPECT_FALSE(o.enabled);
  EXPECT_EQ(o.window, 8);
  EXPECT_EQ(o.min_calls, 4);
  EXPECT_DOUBLE_EQ(o.failure_ratio, 0.25);
  EXPECT_EQ(o.consecutive_failures, 3);
  EXPECT_EQ(o.slow_call_us, 2500);
  EXPECT_DOUBLE_EQ(o.slow_call_ratio, 0.9);
  EXPECT_EQ(o.open_us, 1'500'000);
  EXPECT_EQ(o.half_open_probes, 2);

  nlohmann::json bad = {{"min_calls", 30}};
  JsonParams pb(bad, "cb", {});
  EXPECT_EQ(error_of([&] { read_circuit_breaker_options(pb); }), "cb.min_calls: must be in [1, window] ([1, 20])");
  nlohmann::json ratio = {{"failure_ratio", 0}};
  JsonParams pr(ratio, "cb", {});
  EXPECT_EQ(error_of([&] { read_circuit_breaker_options(pr); }), "cb.failure_ratio: must be in (0, 1]");
}

}  // namespace
}  // namespace twinfer
