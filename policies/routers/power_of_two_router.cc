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
  const CandidateSet* set = index_.get(view, request.model.str());
  if (set != nullptr && set->count() > 0 && options_.choices <= kMaxIndexedChoices) {
#ifndef NDEBUG
    std::mt19937_64 same_draws = rng_;
    const int scanned = scanned_pick(request, view, same_draws);
#endif
    // The shuffle below on the candidate list that the set stands for, its swaps kept aside.
    const std::size_t n = set->count();
    const std::size_t d = std::min<std::size_t>(static_cast<std::size_t>(options_.choices), n);
    moved_.clear();
    auto at = [&](std::size_t position) {
      for (const auto& [p, w] : moved_) {
        if (p == position) return w;
      }
      return set->kth(position);
    };
    auto put = [&](std::size_t position, int w) {
      for (auto& [p, held] : moved_) {
        if (p == position) {
          held = w;
          return;
        }
      }
      moved_.emplace_back(position, w);
    };
    int best = -1;
    for (std::size_t k = 0; k < d; ++k) {
      const std::size_t j = k + uniform_index(rng_, n - k);
      const int at_k = at(k);
      const int w = at(j);
      put(j, at_k);
      put(k, w);
      if (best < 0 || view[w].outstanding() < view[best].outstanding()) best = w;
    }
    assert(best == scanned && "the index and the scan disagree");
    return RouteDecision::to(best);
  }
  const int pick = scanned_pick(request, view, rng_);
  if (pick < 0) return RouteDecision::reject(no_candidate_reason(request, view));
  return RouteDecision::to(pick);
}

int PowerOfTwoRouter::scanned_pick(const Request& request, const ClusterView& view, std::mt19937_64& rng) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return -1;
  // A partial Fisher-Yates shuffle draws distinct samples into the front of the buffer.
  std::size_t n = candidates_.size();
  std::size_t d = std::min<std::size_t>(static_cast<std::size_t>(options_.choices), n);
  int best = -1;
  for (std::size_t k = 0; k < d; ++k) {
    std::size_t j = k + uniform_index(rng, n - k);
    std::swap(candidates_[k], candidates_[j]);
    int w = candidates_[k];
    if (best < 0 || view[w].outstanding() < view[best].outstanding()) best = w;
  }
  return best;
}

}  // namespace twinfer
