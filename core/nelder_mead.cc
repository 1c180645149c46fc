#include "core/nelder_mead.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>
#include <numeric>

namespace twinfer {

NelderMeadResult nelder_mead(const std::function<double(const std::vector<double>&)>& f,
                             const std::vector<double>& start, const std::vector<double>& steps,
                             const NelderMeadOptions& options) {
  assert(!start.empty() && steps.size() == start.size());
  const std::size_t n = start.size();
  NelderMeadResult result;
  auto eval = [&](const std::vector<double>& x) {
    ++result.evaluations;
    const double v = f(x);
    return std::isnan(v) ? std::numeric_limits<double>::infinity() : v;
  };
  std::vector<std::vector<double>> pts(n + 1, start);
  for (std::size_t i = 0; i < n; ++i) pts[i + 1][i] += steps[i];
  std::vector<double> vals(n + 1);
  for (std::size_t i = 0; i <= n; ++i) vals[i] = eval(pts[i]);

  std::vector<std::size_t> order(n + 1);
  auto point_at = [&](const std::vector<double>& centroid, const std::vector<double>& worst, double t) {
    std::vector<double> x(n);
    for (std::size_t j = 0; j < n; ++j) x[j] = centroid[j] + t * (worst[j] - centroid[j]);
    return x;
  };
  while (true) {
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return vals[a] < vals[b]; });
    const std::size_t best = order.front(), worst = order.back(), second = order[n - 1];
    double x_spread = 0;
    for (std::size_t i = 0; i <= n; ++i) {
      for (std::size_t j = 0; j < n; ++j) x_spread = std::max(x_spread, std::abs(pts[i][j] - pts[best][j]));
    }
    if (std::abs(vals[worst] - vals[best]) < options.f_tolerance && x_spread < options.x_tolerance) {
      result.converged = true;
      break;
    }
    if (result.evaluations >= options.max_evaluations) break;
    std::vector<double> centroid(n, 0.0);
    for (std::size_t i = 0; i <= n; ++i) {
      if (i == worst) continue;
      for (std::size_t j = 0; j < n; ++j) centroid[j] += pts[i][j] / double(n);
    }
    const std::vector<double> reflected = point_at(centroid, pts[worst], -1.0);
    const double fr = eval(reflected);
    if (fr < vals[best]) {
      const std::vector<double> expanded = point_at(centroid, pts[worst], -2.0);
      const double fe = eval(expanded);
      if (fe < fr) {
        pts[worst] = expanded, vals[worst] = fe;
      } else {
        pts[worst] = reflected, vals[worst] = fr;
      }
      continue;
    }
    if (fr < vals[second]) {
      pts[worst] = reflected, vals[worst] = fr;
      continue;
    }
    // Contract towards the better of the worst point and its reflection.
    const bool outside = fr < vals[worst];
    const std::vector<double> contracted = point_at(centroid, pts[worst], outside ? -0.5 : 0.5);
    const double fc = eval(contracted);
    if (fc < (outside ? fr : vals[worst])) {
      pts[worst] = contracted, vals[worst] = fc;
      continue;
    }
    for (std::size_t i = 0; i <= n; ++i) {
      if (i == best) continue;
      for (std::size_t j = 0; j < n; ++j) pts[i][j] = pts[best][j] + 0.5 * (pts[i][j] - pts[best][j]);
      vals[i] = eval(pts[i]);
    }
  }
  const std::size_t best =
      static_cast<std::size_t>(std::min_element(vals.begin(), vals.end()) - vals.begin());
  result.x = pts[best];
  result.value = vals[best];
  return result;
}

}  // namespace twinfer
