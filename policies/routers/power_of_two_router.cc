#include "policies/routers/power_of_two_router.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

#include "policies/routers/router_candidates.h"

namespace twinfer {

PowerOfTwoRouter::Options PowerOfTwoRouter::read_options(JsonParams& p, std::uint64_t default_seed) {
  Options opts;
  opts.seed = default_seed;
  p.get("choices", opts.choices);
  p.get("seed", opts.seed);
  p.require(opts.choices >= 1, "choices", "must be at least 1, got " + std::to_string(opts.choices));
  return opts;
}

PowerOfTwoRouter::PowerOfTwoRouter(const Options& options) : options_(options), rng_(options.seed) {
  assert(options_.choices >= 1);
}

RouteDecision PowerOfTwoRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  // A partial Fisher-Yates shuffle draws distinct samples into the front of the buffer.
  std::size_t n = candidates_.size();
  std::size_t d = std::min<std::size_t>(static_cast<std::size_t>(options_.choices), n);
  int best = -1;
  for (std::size_t k = 0; k < d; ++k) {
    std::size_t j = k + uniform_index(rng_, n - k);
    std::swap(candidates_[k], candidates_[j]);
    int w = candidates_[k];
    if (best < 0 || view[w].outstanding() < view[best].outstanding()) best = w;
  }
  return RouteDecision::to(best);
}

}  // namespace twinfer
