#include "policies/admission/token_bucket_admission.h"

#include <algorithm>
#include <cassert>

namespace twinfer {

TokenBucketAdmission::Options TokenBucketAdmission::read_options(JsonParams& p) {
  Options opts;
  std::string cost = "request";
  p.get("rate_per_s", opts.rate_per_s);
  p.require(p.has("rate_per_s"), "rate_per_s", "required (tokens refilled per second)");
  p.require(opts.rate_per_s > 0, "rate_per_s", "must be > 0");
  // A bucket smaller than one token would reject every request, so the default is at least 1.
  opts.burst = std::max(opts.rate_per_s, 1.0);
  p.get("burst", opts.burst);
  p.require(opts.burst >= 1, "burst", "must be at least 1 token");
  p.get("cost", cost);
  p.require(cost == "request" || cost == "tokens", "cost", "must be \"request\" or \"tokens\", got \"" + cost + "\"");
  opts.cost = cost == "tokens" ? Cost::kTokens : Cost::kRequest;
  return opts;
}

TokenBucketAdmission::TokenBucketAdmission(const Options& options) : options_(options), tokens_(options.burst) {
  assert(options_.rate_per_s > 0 && options_.burst >= 1);
}

double TokenBucketAdmission::cost_of(const Request& request) const {
  if (options_.cost == Cost::kRequest) return 1;
  return static_cast<double>(request.input_tokens) + static_cast<double>(request.output_tokens);
}

void TokenBucketAdmission::refill(TimeUs now_us) {
  // A clock that steps back (out-of-order calls) refills nothing rather than draining the bucket.
  if (started_ && now_us > last_us_) {
    tokens_ = std::min(options_.burst, tokens_ + static_cast<double>(now_us - last_us_) * options_.rate_per_s / 1e6);
  }
  if (!started_ || now_us > last_us_) last_us_ = now_us;
  started_ = true;
}

AdmissionDecision TokenBucketAdmission::admit(const Request& request, const ClusterView& view) {
  refill(view.now_us);
  double cost = cost_of(request);
  if (cost <= tokens_) {
    tokens_ -= cost;
    return AdmissionDecision::admit();
  }
  if (cost > options_.burst) {
    return AdmissionDecision::reject("rate limited (token_bucket): request costs " + std::to_string(cost) +
                                     " tokens, more than the burst of " + std::to_string(options_.burst));
  }
  return AdmissionDecision::reject("rate limited (token_bucket)");
}

}  // namespace twinfer
