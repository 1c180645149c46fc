// Percentiles of measured values, for every report (run summaries, cost-model fits).
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <utility>
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

// percentile() of the values a histogram holds, without the values themselves: `counts` lists each
// distinct value with how often it occurs, ascending by value. The same result as percentile() of
// the values, bit for bit. REQUIRES: a positive count in total, p in [0, 100].
inline double percentile_of_counts(const std::vector<std::pair<double, std::int64_t>>& counts, double p) {
  std::int64_t n = 0;
  for (const auto& c : counts) n += c.second;
  assert(n > 0);
  const double rank = p / 100.0 * static_cast<double>(n - 1);
  const auto lo = static_cast<std::int64_t>(rank);
  // The value of 0-based rank k, at or after entry i (ranks asked for in increasing order).
  std::size_t i = 0;
  std::int64_t below = 0;  // values in entries before i
  auto at_rank = [&](std::int64_t k) {
    while (below + counts[i].second <= k) below += counts[i++].second;
    return counts[i].first;
  };
  const double low = at_rank(lo);
  if (lo + 1 >= n) return counts.back().first;
  const double frac = rank - static_cast<double>(lo);
  return low + (at_rank(lo + 1) - low) * frac;
}

}  // namespace twinfer
