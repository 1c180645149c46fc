#include "policies/routers/least_work_router.h"

#include "policies/routers/router_candidates.h"

namespace twinfer {

TimeUs LeastWorkRouter::predicted_delay_us(const Request& request, const WorkerView& worker) const {
  return worker.outstanding_work_us +
         request_work_us(cost_, *worker.instance, request.input_tokens, request.output_tokens);
}

RouteDecision LeastWorkRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  int pick = argmin_from(candidates_, tie_start_, [&](int w) { return predicted_delay_us(request, view[w]); });
  tie_start_ = pick + 1;
  return RouteDecision::to(pick);
}

}  // namespace twinfer
