// Token bucket: admits requests at a sustained rate with bursts up to the bucket size.
#pragma once

#include <string>

#include "policies/admission.h"
#include "core/params.h"

namespace twinfer {

// The bucket holds up to `burst` tokens and starts full at the first request. Before each decision
// it gains (now - previous decision time) * rate_per_s / 1e6 tokens, capped at burst (double
// arithmetic in a fixed order, so runs are reproducible). A request is admitted when the bucket
// holds at least its cost, which is then taken; a rejected request takes nothing.
class TokenBucketAdmission : public Admission {
 public:
  enum class Cost {
    kRequest,  // 1 token per request
    kTokens,   // input_tokens + output_tokens per request
  };
  struct Options {
    double rate_per_s = 0;  // tokens refilled per second; > 0, required in JSON
    double burst = 0;       // bucket size in tokens, >= 1; JSON default: max(rate_per_s, 1)
    Cost cost = Cost::kRequest;  // JSON "cost": "request" | "tokens"
  };
  // Reads "rate_per_s", "burst" and "cost". Does not call p.done().
  static Options read_options(JsonParams& p);

  explicit TokenBucketAdmission(const Options& options);
  AdmissionDecision admit(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "token_bucket"; }
  ViewUse view_use() const override { return ViewUse::kMembership; }

  // Tokens in the bucket after the last decision.
  double tokens() const { return tokens_; }
  double cost_of(const Request& request) const;

 private:
  void refill(TimeUs now_us);

  Options options_;
  double tokens_;
  bool started_ = false;
  TimeUs last_us_ = 0;
};

}  // namespace twinfer
