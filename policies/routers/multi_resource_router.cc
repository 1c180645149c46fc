#include "policies/routers/multi_resource_router.h"

#include <cassert>

#include "policies/routers/router_candidates.h"

namespace twinfer {

MultiResourceRouter::Options MultiResourceRouter::read_options(JsonParams& p) {
  Options opts;
  p.get("w_util", opts.w_util);
  p.get("w_kv", opts.w_kv);
  p.get("w_queue", opts.w_queue);
  p.get("queue_norm", opts.queue_norm);
  p.require(opts.w_util >= 0, "w_util", "must be >= 0");
  p.require(opts.w_kv >= 0, "w_kv", "must be >= 0");
  p.require(opts.w_queue >= 0, "w_queue", "must be >= 0");
  p.require(opts.queue_norm > 0, "queue_norm", "must be > 0");
  return opts;
}

MultiResourceRouter::MultiResourceRouter(const Options& options) : options_(options) {
  assert(options_.queue_norm > 0);
}

double MultiResourceRouter::score(const WorkerView& worker) const {
  return options_.w_util * worker.utilization_ewma + options_.w_kv * worker.kv_used_fraction() +
         options_.w_queue * static_cast<double>(worker.outstanding()) / options_.queue_norm;
}

RouteDecision MultiResourceRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  int pick = argmin_from(candidates_, tie_start_, [&](int w) { return score(view[w]); });
  tie_start_ = pick + 1;
  return RouteDecision::to(pick);
}

}  // namespace twinfer
