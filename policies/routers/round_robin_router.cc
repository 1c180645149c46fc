#include "policies/routers/round_robin_router.h"

#include "policies/routers/router_candidates.h"

namespace twinfer {

RouteDecision RoundRobinRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  // Remembering a worker index rather than a position among candidates keeps the cycle fair when
  // the candidate set changes between requests (a worker going down or coming back).
  int pick = candidates_.front();
  for (int w : candidates_) {
    if (w >= next_) {
      pick = w;
      break;
    }
  }
  next_ = pick + 1;
  return RouteDecision::to(pick);
}

}  // namespace twinfer
