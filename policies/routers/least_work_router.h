// Least work: each request goes to the worker predicted to finish it first, which makes routing
// aware of heterogeneous GPUs.
#pragma once

#include <string>
#include <vector>

#include "policies/cost_model.h"
#include "policies/router.h"

namespace twinfer {

// Picks the candidate with the smallest predicted completion delay
//   outstanding_work_us + request_work_us(cost, instance, input_tokens, output_tokens),
// so a fast GPU with more queued work can still beat an idle slow one. Ties are broken
// round-robin as in LeastOutstandingRouter.
// REQUIRES: `cost` outlives the router.
class LeastWorkRouter : public Router {
 public:
  explicit LeastWorkRouter(const CostModel& cost) : cost_(cost) {}
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "least_work"; }
  ViewUse view_use() const override { return ViewUse::kQueues; }

  // The score route() minimizes, in microseconds.
  TimeUs predicted_delay_us(const Request& request, const WorkerView& worker) const;

 private:
  const CostModel& cost_;
  int tie_start_ = 0;
  std::vector<int> candidates_;
};

}  // namespace twinfer
