// Multi-resource: each request goes to the worker with the lowest weighted mix of utilization,
// KV-cache use and queue length.
#pragma once

#include <string>
#include <vector>

#include "core/params.h"
#include "policies/router.h"

namespace twinfer {

// Picks the candidate with the smallest
//   w_util * utilization_ewma + w_kv * kv_used_fraction() + w_queue * outstanding() / queue_norm.
// Each term is about 0..1 for a normally loaded worker (queue_norm is the queue length that
// counts as "full"). Ties are broken round-robin as in LeastOutstandingRouter.
class MultiResourceRouter : public Router {
 public:
  struct Options {
    double w_util = 1;
    double w_kv = 1;
    double w_queue = 1;
    double queue_norm = 16;  // requests; > 0
  };
  // Reads the four keys above, each >= 0 (queue_norm > 0). Does not call p.done().
  static Options read_options(JsonParams& p);

  explicit MultiResourceRouter(const Options& options);
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "multi_resource"; }
  ViewUse view_use() const override { return ViewUse::kAll; }

  double score(const WorkerView& worker) const;

 private:
  Options options_;
  int tie_start_ = 0;
  std::vector<int> candidates_;
};

}  // namespace twinfer
