// Least outstanding: each request goes to the candidate worker with the fewest requests waiting or
// running.
#pragma once

#include <string>
#include <vector>

#include "policies/router.h"

namespace twinfer {

// Picks the candidate with the smallest WorkerView::outstanding(). Ties are broken round-robin:
// the first tied worker at or after the one following the previous pick, in index order, so an
// idle homogeneous cluster is filled evenly rather than always from worker 0.
class LeastOutstandingRouter : public Router {
 public:
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "least_outstanding"; }

 private:
  int tie_start_ = 0;
  std::vector<int> candidates_;
};

}  // namespace twinfer
