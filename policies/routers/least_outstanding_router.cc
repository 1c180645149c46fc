#include "policies/routers/least_outstanding_router.h"

#include <algorithm>
#include <cmath>

#include "policies/routers/router_candidates.h"

namespace twinfer {

LeastOutstandingRouter::Options LeastOutstandingRouter::read_options(JsonParams& p) {
  Options o;
  p.get("slow_start_s", o.slow_start_s);
  p.require(std::isfinite(o.slow_start_s) && o.slow_start_s >= 0, "slow_start_s",
            "must be >= 0 seconds (0: off), got " + format_number(o.slow_start_s));
  return o;
}

RouteDecision LeastOutstandingRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  int pick;
  if (options_.slow_start_s <= 0) {
    pick = argmin_from(candidates_, tie_start_, [&](int w) { return view[w].outstanding(); });
  } else {
    const double window_us = options_.slow_start_s * 1e6;
    pick = argmin_from(candidates_, tie_start_, [&](int w) {
      const WorkerView& v = view[w];
      const double score = v.outstanding() + 1.0;
      const double age_us = double(view.now_us - v.ready_since_us);
      if (v.ready_since_us < 0 || age_us >= window_us) return score;
      return score / std::max(0.1, age_us / window_us);
    });
  }
  tie_start_ = pick + 1;
  return RouteDecision::to(pick);
}

}  // namespace twinfer
