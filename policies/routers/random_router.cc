#include "policies/routers/random_router.h"

#include <cassert>

#include "policies/routers/router_candidates.h"

namespace twinfer {

RandomRouter::Options RandomRouter::read_options(JsonParams& p, std::uint64_t default_seed) {
  Options opts;
  opts.seed = default_seed;
  p.get("seed", opts.seed);
  return opts;
}

RouteDecision RandomRouter::route(const Request& request, const ClusterView& view) {
  const CandidateSet* set = index_.get(view, request.model.str());
  if (set != nullptr && set->count() > 0) {
    const std::size_t k = uniform_index(rng_, set->count());
#ifndef NDEBUG
    collect_candidates(request, view, candidates_);
    assert(candidates_.size() == set->count() && candidates_[k] == set->kth(k) && "the index and the scan disagree");
#endif
    return RouteDecision::to(set->kth(k));
  }
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  return RouteDecision::to(candidates_[uniform_index(rng_, candidates_.size())]);
}

}  // namespace twinfer
