// Deadline: rejects requests that cannot meet their deadline and drops waiting ones that missed it.
#pragma once

#include <optional>
#include <string>

#include "policies/admission.h"
#include "policies/cost_model.h"
#include "core/params.h"

namespace twinfer {

// A request's deadline is Request::deadline_us, or, when it has none and default_deadline_ms > 0,
// arrival_us + default_deadline_ms. Requests without a deadline are always admitted and never
// dropped. At admission a request is rejected when now >= deadline, or, when `predictive` and a
// cost model is given, when now + the smallest request_work_us over the eligible workers exceeds
// the deadline: the request alone on the fastest idle worker would still be late (queueing is
// ignored, so this never rejects a request that could make it). A waiting request whose deadline
// has passed (now >= deadline) when a worker would start it is dropped.
class DeadlineAdmission : public Admission {
 public:
  struct Options {
    bool predictive = true;
    double default_deadline_ms = 0;  // relative to arrival; 0: requests without one have none
  };
  // Reads "predictive" and "default_deadline_ms" (>= 0). Does not call p.done().
  static Options read_options(JsonParams& p);

  // `cost` may be null (no prediction); when set it must outlive the policy.
  DeadlineAdmission(const Options& options, const CostModel* cost);
  AdmissionDecision admit(const Request& request, const ClusterView& view) override;
  std::optional<std::string> drop_before_start(const Request& request, TimeUs now_us) const override;
  bool may_drop_before_start() const override { return true; }
  std::string name() const override { return "deadline"; }
  ViewUse view_use() const override { return ViewUse::kQueues; }

  // The deadline this policy applies to `request`; kNever if none.
  TimeUs effective_deadline_us(const Request& request) const;

 private:
  // The least request_work_us over the eligible workers; kNever when none or no cost model.
  TimeUs fastest_work_us(const Request& request, const ClusterView& view) const;

  Options options_;
  TimeUs default_deadline_us_;
  const CostModel* cost_;
};

}  // namespace twinfer
