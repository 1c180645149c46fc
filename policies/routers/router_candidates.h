// Helpers shared by the built-in routers: which workers a request may go to, why none, and the
// seeded random numbers and tie-breaking they pick with.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "policies/cluster_view.h"
#include "core/request.h"
#include "policies/router.h"

namespace twinfer {

// Replaces `out` with the ascending indices of the workers that may take `request`: the eligible
// workers that are Health::kUp, or, only when there is none, the eligible kSuspect ones.
// `out` is a caller-owned buffer so that routing allocates nothing in the steady state.
void collect_candidates(const Request& request, const ClusterView& view, std::vector<int>& out);

// Why collect_candidates() found nothing: "no worker serves model 'x'" when no worker has the model
// at all, else "no healthy worker for model 'x'" (or "no healthy worker" for the default model).
std::string no_candidate_reason(const Request& request, const ClusterView& view);

// A uniform double in [0, 1), identical on every standard library.
inline double uniform_unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// A uniform integer in [0, n). REQUIRES: n > 0.
inline std::size_t uniform_index(std::mt19937_64& rng, std::size_t n) {
  auto i = static_cast<std::size_t>(uniform_unit(rng) * static_cast<double>(n));
  return i < n ? i : n - 1;
}

// The candidate with the smallest `score(worker_index)`. Equal scores go to the first one met in
// cyclic index order starting at worker index `start`, so that a caller advancing `start` past each
// pick spreads ties round-robin. REQUIRES: candidates non-empty and ascending.
template <class Score>
int argmin_from(const std::vector<int>& candidates, int start, Score score) {
  std::size_t first = 0;
  while (first < candidates.size() && candidates[first] < start) ++first;
  if (first == candidates.size()) first = 0;
  int best = candidates[first];
  auto best_score = score(best);
  for (std::size_t k = 1; k < candidates.size(); ++k) {
    int w = candidates[(first + k) % candidates.size()];
    auto s = score(w);
    if (s < best_score) {
      best = w;
      best_score = s;
    }
  }
  return best;
}

}  // namespace twinfer
