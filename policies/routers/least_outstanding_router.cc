#include "policies/routers/least_outstanding_router.h"

#include <algorithm>
#include <cassert>
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

int LeastOutstandingRouter::indexed_pick(const Request& request, const ClusterView& view) {
  if (options_.slow_start_s > 0) return -1;
  const OutstandingTree* index = index_.get(view, request.model.str());
  if (index == nullptr) return -1;
  const MinTree& tree = index->tree;
  const std::int64_t least = tree.min();
  if (least == MinTree::kNone) return -1;
  // The first least-loaded worker in cyclic order from tie_start_, as argmin_from() picks.
  std::int64_t pick = tree.first_at_or_after(std::size_t(tie_start_), least);
  if (pick < 0) pick = tree.first_at_or_after(0, least);
  return static_cast<int>(pick);
}

int LeastOutstandingRouter::scanned_pick(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return -1;
  if (options_.slow_start_s <= 0) {
    return argmin_from(candidates_, tie_start_, [&](int w) { return view[w].outstanding(); });
  }
  const double window_us = options_.slow_start_s * 1e6;
  return argmin_from(candidates_, tie_start_, [&](int w) {
    const WorkerView& v = view[w];
    const double score = v.outstanding() + 1.0;
    const double age_us = double(view.now_us - v.ready_since_us);
    if (v.ready_since_us < 0 || age_us >= window_us) return score;
    return score / std::max(0.1, age_us / window_us);
  });
}

RouteDecision LeastOutstandingRouter::route(const Request& request, const ClusterView& view) {
  int pick = indexed_pick(request, view);
  if (pick >= 0) {
    assert(pick == scanned_pick(request, view) && "the index and the scan disagree");
  } else {
    pick = scanned_pick(request, view);
    if (pick < 0) return RouteDecision::reject(no_candidate_reason(request, view));
  }
  tie_start_ = pick + 1;
  return RouteDecision::to(pick);
}

}  // namespace twinfer
