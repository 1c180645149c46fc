// A scorer of the scored router (policies/routers/scored_router.h) beyond its built-in ones, as
// users write them (in Python): one score per candidate worker, higher is better, which the router
// weights and adds to the other scorers' before its picker chooses.
#pragma once

#include <string>
#include <vector>

#include "core/request.h"
#include "policies/cluster_view.h"

namespace twinfer {

class RouteScorer {
 public:
  virtual ~RouteScorer() = default;
  // Scores of `candidates` (worker indices into `views`, the workers that may serve `request`), in
  // their order: one each, in [0, 1]. `views` are the router's (refreshed every refresh_ms).
  virtual std::vector<double> score(const Request& request, const std::vector<WorkerView>& views,
                                    const std::vector<int>& candidates) = 0;
  virtual std::string name() const = 0;
  // Which fields of the views score() reads (see ViewUse).
  virtual ViewUse view_use() const { return ViewUse::kAll; }
};

}  // namespace twinfer
