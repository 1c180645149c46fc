#include "serving/health/retry_policy.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "core/params.h"

namespace twinfer {

RetryOptions read_retry_options(JsonParams& p) {
  RetryOptions o;
  double window_s = s_from_us(o.budget_window_us);
  double base_ms = ms_from_us(o.backoff_base_us);
  double max_ms = ms_from_us(o.backoff_max_us);
  p.get("max_attempts", o.max_attempts);
  p.get("budget_ratio", o.budget_ratio);
  p.get("budget_min_retries", o.budget_min_retries);
  p.get("budget_window_s", window_s);
  p.get("backoff_base_ms", base_ms);
  p.get("backoff_max_ms", max_ms);
  p.get("jitter", o.jitter);
  p.require(o.max_attempts >= 1, "max_attempts", "must be >= 1 (1: no retries)");
  p.require(o.budget_ratio >= 0, "budget_ratio", "must be >= 0");
  p.require(o.budget_min_retries >= 0, "budget_min_retries", "must be >= 0");
  p.require(window_s > 0, "budget_window_s", "must be > 0");
  p.require(base_ms >= 0, "backoff_base_ms", "must be >= 0");
  p.require(max_ms >= base_ms, "backoff_max_ms", "must be >= backoff_base_ms");
  p.require(o.jitter >= 0 && o.jitter <= 1, "jitter", "must be in [0, 1]");
  o.budget_window_us = us_from_s(window_s);
  o.backoff_base_us = us_from_ms(base_ms);
  o.backoff_max_us = us_from_ms(max_ms);
  p.require(o.budget_window_us >= 1, "budget_window_s", "must be at least 1e-6 (1 us)");
  return o;
}

RetryPolicy::RetryPolicy(RetryOptions options, std::uint64_t seed) : options_(options), rng_(seed) {
  assert(options_.max_attempts >= 1 && options_.budget_window_us > 0 && options_.jitter >= 0 &&
         options_.jitter <= 1 && options_.backoff_max_us >= options_.backoff_base_us);
}

void RetryPolicy::on_request(TimeUs now_us) {
  forget_before(now_us);
  requests_.push_back(now_us);
}

void RetryPolicy::forget_before(TimeUs now_us) {
  const TimeUs oldest_kept_us = now_us - options_.budget_window_us;
  while (!requests_.empty() && requests_.front() <= oldest_kept_us) requests_.pop_front();
  while (!retries_.empty() && retries_.front() <= oldest_kept_us) retries_.pop_front();
}

int RetryPolicy::budget_left(TimeUs now_us) {
  forget_before(now_us);
  const double earned_retries = std::floor(options_.budget_ratio * static_cast<double>(requests_.size()));
  const auto earned = static_cast<std::int64_t>(earned_retries);
  const std::int64_t allowed = std::max<std::int64_t>(options_.budget_min_retries, earned);
  return static_cast<int>(std::max<std::int64_t>(0, allowed - static_cast<std::int64_t>(retries_.size())));
}

TimeUs RetryPolicy::backoff_us(int attempts_made) {
  // Doubling stops at the cap, so large attempt counts cannot overflow.
  double backoff = static_cast<double>(options_.backoff_base_us);
  for (int i = 1; i < attempts_made && backoff < static_cast<double>(options_.backoff_max_us); ++i) backoff *= 2;
  backoff = std::min(backoff, static_cast<double>(options_.backoff_max_us));
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
  return static_cast<TimeUs>(std::llround(backoff * (1.0 - options_.jitter * u)));
}

RetryDecision RetryPolicy::on_failure(const Request& r, int attempts_made, const std::string& failure,
                                      TimeUs now_us) {
  assert(attempts_made >= 1);
  RetryDecision d;
  if (attempts_made >= options_.max_attempts) {
    d.reason = failure + "; gave up after " + std::to_string(attempts_made) +
               (attempts_made == 1 ? " attempt" : " attempts");
    return d;
  }
  if (budget_left(now_us) == 0) {
    d.reason = failure + "; retry budget exhausted (" + std::to_string(retries_.size()) + " retries in the last " +
               format_number(s_from_us(options_.budget_window_us)) + " s)";
    return d;
  }
  const TimeUs at_us = now_us + backoff_us(attempts_made);
  if (r.deadline_us != kNever && at_us >= r.deadline_us) {
    d.reason = failure + "; no retry: the next attempt (at " + std::to_string(at_us) +
               " us) would start past the deadline (" + std::to_string(r.deadline_us) + " us)";
    return d;
  }
  retries_.push_back(now_us);
  d.retry = true;
  d.at_us = at_us;
  return d;
}

}  // namespace twinfer
