#include "policies/routers/round_robin_router.h"

#include "policies/routers/router_candidates.h"

namespace twinfer {

RouteDecision RoundRobinRouter::route(const Request& request, const ClusterView& view) {
  // The first of collect_candidates()'s workers at or after next_, cyclically, found by a scan that
  // stops there (constant time while workers are up) instead of collecting them all. Remembering
  // a worker index rather than a position among candidates keeps the cycle fair when the candidate
  // set changes between requests (a worker going down or coming back).
  const int n = static_cast<int>(view.size());
  const int start = next_ < n ? next_ : 0;
  int suspect = -1;  // suspect workers are a last resort
  for (int k = 0; k < n; ++k) {
    const int w = start + k < n ? start + k : start + k - n;
    const WorkerView& v = view[static_cast<std::size_t>(w)];
    if (!eligible(v, request)) continue;
    if (v.health == Health::kUp) {
      next_ = w + 1;
      return RouteDecision::to(w);
    }
    if (suspect < 0) suspect = w;
  }
  if (suspect < 0) return RouteDecision::reject(no_candidate_reason(request, view));
  next_ = suspect + 1;
  return RouteDecision::to(suspect);
}

}  // namespace twinfer
