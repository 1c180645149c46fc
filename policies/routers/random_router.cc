#include "policies/routers/random_router.h"

#include "policies/routers/router_candidates.h"

namespace twinfer {

RandomRouter::Options RandomRouter::read_options(JsonParams& p, std::uint64_t default_seed) {
  Options opts;
  opts.seed = default_seed;
  p.get("seed", opts.seed);
  return opts;
}

RouteDecision RandomRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  return RouteDecision::to(candidates_[uniform_index(rng_, candidates_.size())]);
}

}  // namespace twinfer
