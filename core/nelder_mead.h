// Derivative-free minimization of a few parameters (Nelder and Mead's simplex method), for fits
// whose objective is a whole simulation.
#pragma once

#include <functional>
#include <vector>

namespace twinfer {

struct NelderMeadOptions {
  int max_evaluations = 200;
  // Stops when the simplex's values differ by less than this (absolute) and its points by less
  // than x_tolerance in every coordinate.
  double f_tolerance = 1e-4;
  double x_tolerance = 1e-3;
};

struct NelderMeadResult {
  std::vector<double> x;  // the best point found
  double value = 0;       // f(x)
  int evaluations = 0;
  bool converged = false;  // the tolerances were met before max_evaluations
};

// Minimizes f from `start`, with an initial simplex of `start` and, for each coordinate i, `start`
// moved by steps[i] along it. Standard coefficients (reflection 1, expansion 2, contraction 1/2,
// shrink 1/2); ties keep the earlier point, so that the search is deterministic. A NaN value counts
// as +infinity. REQUIRES: steps.size() == start.size() > 0, every step non-zero.
NelderMeadResult nelder_mead(const std::function<double(const std::vector<double>&)>& f,
                             const std::vector<double>& start, const std::vector<double>& steps,
                             const NelderMeadOptions& options = NelderMeadOptions());

}  // namespace twinfer
