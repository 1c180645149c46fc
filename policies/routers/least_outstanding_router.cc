#include "policies/routers/least_outstanding_router.h"

#include "policies/routers/router_candidates.h"

namespace twinfer {

RouteDecision LeastOutstandingRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  int pick = argmin_from(candidates_, tie_start_, [&](int w) { return view[w].outstanding(); });
  tie_start_ = pick + 1;
  return RouteDecision::to(pick);
}

}  // namespace twinfer
