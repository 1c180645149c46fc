// Percentiles of measured values, for every report (run summaries, cost-model fits).
#pragma once

#include <cassert>
#include <cstddef>
#include <vector>

namespace twinfer {

// Percentile of sorted values with linear interpolation between ranks (numpy's default).
// REQUIRES: sorted ascending, non-empty, p in [0, 100].
inline double percentile(const std::vector<double>& sorted, double p) {
  assert(!sorted.empty());
  const double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(rank);
  if (lo + 1 >= sorted.size()) return sorted.back();
  const double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[lo + 1] - sorted[lo]) * frac;
}

}  // namespace twinfer
