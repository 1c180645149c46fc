#include "core/nelder_mead.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace twinfer {
namespace {

TEST(NelderMead, FindsTheMinimumOfRosenbrocksValley) {
  const auto rosenbrock = [](const std::vector<double>& x) {
    return 100 * std::pow(x[1] - x[0] * x[0], 2) + std::pow(1 - x[0], 2);
  };
  NelderMeadOptions o;
  o.max_evaluations = 2000;
  o.f_tolerance = 1e-12;
  o.x_tolerance = 1e-6;
  const NelderMeadResult r = nelder_mead(rosenbrock, {-1.2, 1.0}, {0.5, 0.5}, o);
  EXPECT_TRUE(r.converged);
  EXPECT_NEAR(r.x[0], 1.0, 1e-3);
  EXPECT_NEAR(r.x[1], 1.0, 2e-3);
  EXPECT_LT(r.value, 1e-6);
  EXPECT_LE(r.evaluations, 2000 + 3);
}

TEST(NelderMead, FourParametersOfAShiftedBowl) {
  const std::vector<double> target = {0.3, -1.2, 2.0, 0.7};
  const auto bowl = [&](const std::vector<double>& x) {
    double s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) s += double(i + 1) * std::abs(x[i] - target[i]);  // not smooth
    return s;
  };
  NelderMeadOptions o;
  o.max_evaluations = 3000;
  o.f_tolerance = 1e-9;
  o.x_tolerance = 1e-6;
  const NelderMeadResult r = nelder_mead(bowl, {0, 0, 0, 0}, {0.7, 0.7, 0.7, 0.7}, o);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_NEAR(r.x[i], target[i], 1e-3) << i;
}

TEST(NelderMead, StopsAtTheEvaluationBudgetAndTreatsNanAsInfinite) {
  int calls = 0;
  const auto f = [&](const std::vector<double>& x) {
    ++calls;
    return x[0] < 0 ? std::numeric_limits<double>::quiet_NaN() : std::pow(x[0] - 3, 2);
  };
  NelderMeadOptions o;
  o.max_evaluations = 15;
  const NelderMeadResult r = nelder_mead(f, {0.5}, {-0.4}, o);
  EXPECT_EQ(r.evaluations, calls);
  EXPECT_LE(calls, 15 + 2);  // a step in progress finishes (an expansion evaluates twice)
  EXPECT_FALSE(r.converged);
  EXPECT_GE(r.x[0], 0);  // NaN points never win
  EXPECT_LT(r.value, std::pow(0.5 - 3, 2));
}

TEST(NelderMead, TheSameInputsGiveTheSameSearch) {
  const auto f = [](const std::vector<double>& x) { return std::pow(x[0] - 1, 2) + std::abs(x[1] + 2); };
  const NelderMeadResult a = nelder_mead(f, {0, 0}, {1, 1});
  const NelderMeadResult b = nelder_mead(f, {0, 0}, {1, 1});
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.evaluations, b.evaluations);
}

}  // namespace
}  // namespace twinfer
