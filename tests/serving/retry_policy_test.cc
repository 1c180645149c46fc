#include "serving/health/retry_policy.h"

#include <functional>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::error_of;

using testing::make_request;

RetryOptions no_jitter() {
  RetryOptions o;
  o.jitter = 0;
  o.max_attempts = 20;
  o.budget_min_retries = 1000;
  return o;
}

TEST(RetryPolicy, GivesUpAfterMaxAttempts) {
  RetryPolicy p(RetryOptions{}, 1);  // 3 attempts
  const Request r = make_request(1);
  EXPECT_TRUE(p.on_failure(r, 2, "timeout", 0).retry);
  RetryDecision d = p.on_failure(r, 3, "timeout", 0);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.at_us, kNever);
  EXPECT_EQ(d.reason, "timeout; gave up after 3 attempts");
}

TEST(RetryPolicy, BackoffDoublesUpToTheCap) {
  RetryPolicy p(no_jitter(), 1);  // base 10 ms, max 1 s
  const Request r = make_request(1);
  EXPECT_EQ(p.on_failure(r, 1, "e", 1000).at_us, 1000 + 10'000);
  EXPECT_EQ(p.on_failure(r, 2, "e", 1000).at_us, 1000 + 20'000);
  EXPECT_EQ(p.on_failure(r, 3, "e", 1000).at_us, 1000 + 40'000);
  EXPECT_EQ(p.on_failure(r, 7, "e", 1000).at_us, 1000 + 640'000);
  EXPECT_EQ(p.on_failure(r, 8, "e", 1000).at_us, 1000 + 1'000'000);  // 1.28 s capped
  EXPECT_EQ(p.on_failure(r, 19, "e", 1000).at_us, 1000 + 1'000'000);
}

TEST(RetryPolicy, JitterTakesASeededFractionOff) {
  RetryOptions o = no_jitter();
  o.jitter = 0.5;
  RetryPolicy p(o, 42);
  std::mt19937_64 rng(42);
  const Request r = make_request(1);
  for (int attempts = 1; attempts <= 3; ++attempts) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    const double full = 10'000.0 * (1 << (attempts - 1));
    const TimeUs at_us = p.on_failure(r, attempts, "e", 0).at_us;
    EXPECT_EQ(at_us, std::llround(full * (1 - 0.5 * u)));
    EXPECT_GT(at_us, full / 2);
    EXPECT_LE(at_us, full);
  }
  RetryPolicy same(o, 42);
  RetryPolicy other(o, 43);
  const TimeUs first_same = same.on_failure(r, 1, "e", 0).at_us;
  const TimeUs first_other = other.on_failure(r, 1, "e", 0).at_us;
  RetryPolicy again(o, 42);
  EXPECT_EQ(again.on_failure(r, 1, "e", 0).at_us, first_same);
  EXPECT_NE(first_other, first_same);
}

TEST(RetryPolicy, BudgetAllowsTheMinimumThenRefuses) {
  RetryOptions o = no_jitter();
  o.budget_min_retries = 2;
  RetryPolicy p(o, 1);
  const Request r = make_request(1);
  EXPECT_EQ(p.budget_left(0), 2);
  EXPECT_TRUE(p.on_failure(r, 1, "e", 0).retry);
  EXPECT_TRUE(p.on_failure(r, 1, "e", 1'000'000).retry);
  RetryDecision d = p.on_failure(r, 1, "connection reset", 2'000'000);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.reason, "connection reset; retry budget exhausted (2 retries in the last 10 s)");
  // The window is (now - 10 s, now]: the retry at 0 is forgotten at 10 s exactly.
  EXPECT_EQ(p.budget_left(9'999'999), 0);
  EXPECT_EQ(p.budget_left(10'000'000), 1);
  EXPECT_TRUE(p.on_failure(r, 1, "e", 10'000'000).retry);
}

TEST(RetryPolicy, BudgetGrowsWithFirstAttempts) {
  RetryOptions o = no_jitter();
  o.budget_min_retries = 0;  // ratio 0.2
  RetryPolicy p(o, 1);
  const Request r = make_request(1);
  EXPECT_FALSE(p.on_failure(r, 1, "e", 0).retry);
  for (int i = 0; i < 14; ++i) p.on_request(0);
  EXPECT_EQ(p.budget_left(0), 2);  // floor(0.2 x 14)
  p.on_request(0);
  EXPECT_EQ(p.budget_left(0), 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(p.on_failure(r, 1, "e", 0).retry);
  EXPECT_FALSE(p.on_failure(r, 1, "e", 0).retry);
  // The first attempts age out of the window too.
  EXPECT_EQ(p.budget_left(10'000'000), 0);
}

TEST(RetryPolicy, NeverRetriesPastTheDeadline) {
  RetryPolicy p(no_jitter(), 1);
  Request r = make_request(1);
  r.deadline_us = 1000 + 10'000;  // the retry would start exactly at the deadline
  const int budget = p.budget_left(1000);
  RetryDecision d = p.on_failure(r, 1, "timeout", 1000);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(d.reason, "timeout; no retry: the next attempt (at 11000 us) would start past the deadline (11000 us)");
  EXPECT_EQ(p.budget_left(1000), budget);  // a refused retry costs no budget
  r.deadline_us = 1000 + 10'001;
  EXPECT_TRUE(p.on_failure(r, 1, "timeout", 1000).retry);
}

TEST(RetryPolicy, ReadsOptionsInTheirUnitsAndChecksRanges) {
  nlohmann::json j = {{"max_attempts", 4},   {"budget_ratio", 0.1},    {"budget_min_retries", 5},
                      {"budget_window_s", 2.5}, {"backoff_base_ms", 20}, {"backoff_max_ms", 500},
                      {"jitter", 0.25}};
  JsonParams p(j, "r", {});
  RetryOptions o = read_retry_options(p);
  EXPECT_EQ(o.max_attempts, 4);
  EXPECT_DOUBLE_EQ(o.budget_ratio, 0.1);
  EXPECT_EQ(o.budget_min_retries, 5);
  EXPECT_EQ(o.budget_window_us, 2'500'000);
  EXPECT_EQ(o.backoff_base_us, 20'000);
  EXPECT_EQ(o.backoff_max_us, 500'000);
  EXPECT_DOUBLE_EQ(o.jitter, 0.25);

  nlohmann::json jitter = {{"jitter", 1.5}};
  JsonParams pj(jitter, "r", {});
  EXPECT_EQ(error_of([&] { read_retry_options(pj); }), "r.jitter: must be in [0, 1]");
  nlohmann::json backoff = {{"backoff_base_ms", 20}, {"backoff_max_ms", 10}};
  JsonParams pb(backoff, "r", {});
  EXPECT_EQ(error_of([&] { read_retry_options(pb); }), "r.backoff_max_ms: must be >= backoff_base_ms");
  nlohmann::json attempts = {{"max_attempts", 0}};
  JsonParams pa(attempts, "r", {});
  EXPECT_EQ(error_of([&] { read_retry_options(pa); }), "r.max_attempts: must be >= 1 (1: no retries)");
}

}  // namespace
}  // namespace twinfer
