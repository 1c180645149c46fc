// Retries with a budget (Finagle RetryBudget, gRPC retry throttling) and exponential backoff with
// seeded jitter.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <string>

#include "core/params.h"
#include "core/request.h"
#include "core/time.h"

namespace twinfer {

struct RetryOptions {
  int max_attempts = 3;                  // attempts per request, first included; 1: no retry
  double budget_ratio = 0.2;             // retries allowed per first attempt in the window, >= 0
  int budget_min_retries = 100;          // retries always allowed in the window (10/s over 10 s), >= 0
  TimeUs budget_window_us = 10'000'000;  // > 0
  TimeUs backoff_base_us = 10'000;       // >= 0
  TimeUs backoff_max_us = 1'000'000;     // >= backoff_base_us
  double jitter = 0.5;                   // fraction of the backoff taken off at random, in [0, 1]
};

// Reads "max_attempts", "budget_ratio", "budget_min_retries", "budget_window_s", "backoff_base_ms",
// "backoff_max_ms" and "jitter", and checks their ranges. Does not call p.done().
RetryOptions read_retry_options(JsonParams& p);

struct RetryDecision {
  bool retry = false;
  TimeUs at_us = kNever;  // when to send the next attempt (retry), else kNever
  std::string reason;     // why not (no retry): "<failure>; gave up after 3 attempts", ...
};

// Decides whether a failed attempt is retried, and when. A retry is granted when
//   - attempts_made < max_attempts,
//   - the retries granted in the last budget_window_us (now - window, now] are fewer than
//     max(budget_min_retries, floor(budget_ratio * first attempts in that window)), and
//   - the retry time is before the request's deadline_us (if any);
// it is then sent backoff = min(backoff_max, backoff_base * 2^(attempts_made - 1)) * (1 - jitter * u)
// later (rounded to the microsecond), u uniform in [0, 1) from a seeded mt19937_64, one draw per
// decision that reaches the backoff. Times passed in must not go back.
// Thread safety: none (drivers serialize calls).
class RetryPolicy {
 public:
  RetryPolicy(RetryOptions options, std::uint64_t seed);

  // A first attempt was admitted at now_us (it grows the budget).
  void on_request(TimeUs now_us);
  // REQUIRES: attempts_made >= 1. `failure` describes the failed attempt; it starts the reason.
  RetryDecision on_failure(const Request& r, int attempts_made, const std::string& failure, TimeUs now_us);

  // Retries that on_failure() may still grant at now_us.
  int budget_left(TimeUs now_us);
  const RetryOptions& options() const { return options_; }

 private:
  void forget_before(TimeUs now_us);
  TimeUs backoff_us(int attempts_made);

  RetryOptions options_;
  std::mt19937_64 rng_;
  std::deque<TimeUs> requests_;  // first attempts in the window, oldest first
  std::deque<TimeUs> retries_;   // retries granted in the window, oldest first
};

}  // namespace twinfer
