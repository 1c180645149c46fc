#include "traces/sampling.h"

#include <cmath>

#include <gtest/gtest.h>

namespace twinfer {
namespace {

struct Moments {
  double mean = 0;
  double variance = 0;
  double cv() const { return std::sqrt(variance) / mean; }
};

template <class Draw>
Moments moments_of(int n, Draw draw) {
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double x = draw();
    sum += x;
    sum_sq += x * x;
  }
  Moments m;
  m.mean = sum / n;
  m.variance = sum_sq / n - m.mean * m.mean;
  return m;
}

constexpr int kSamples = 200'000;

TEST(Uniform01, IsTheTop53BitsOfTheGenerator) {
  std::mt19937_64 rng;  // default seed 5489; the standard fixes its 10000th output
  rng.discard(9999);
  // (9981545732273789042 >> 11) * 2^-53
  EXPECT_EQ(uniform01(rng), 0.5411006783847329);
}

TEST(Uniform01, StaysInItsInterval) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 10'000; ++i) {
    const double u = uniform01(rng), v = uniform_open01(rng);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    ASSERT_GT(v, 0.0);
    ASSERT_LT(v, 1.0);
  }
}

TEST(StandardNormal, HasMeanZeroAndVarianceOne) {
  std::mt19937_64 rng(2);
  const Moments m = moments_of(kSamples, [&] { return standard_normal(rng); });
  EXPECT_NEAR(m.mean, 0.0, 0.01);  // standard error 0.0022
  EXPECT_NEAR(m.variance, 1.0, 0.02);
}

TEST(Exponential, HasItsMeanAndCvOne) {
  std::mt19937_64 rng(3);
  const Moments m = moments_of(kSamples, [&] { return exponential(rng, 2.5); });
  EXPECT_NEAR(m.mean, 2.5, 2.5 * 0.02);
  EXPECT_NEAR(m.cv(), 1.0, 0.03);
}

// Gamma(k, theta) has mean k*theta and cv 1/sqrt(k).
class GammaShape : public ::testing::TestWithParam<double> {};

TEST_P(GammaShape, HasMeanAndCvOfTheShape) {
  const double shape = GetParam(), scale = 3.0;
  std::mt19937_64 rng(4);
  const Moments m = moments_of(kSamples, [&] { return gamma_variate(rng, shape, scale); });
  EXPECT_NEAR(m.mean / (shape * scale), 1.0, 0.03);
  EXPECT_NEAR(m.cv() * std::sqrt(shape), 1.0, 0.05);
}

INSTANTIATE_TEST_SUITE_P(BelowAndAboveOne, GammaShape, ::testing::Values(0.25, 0.5, 1.0, 2.0, 9.0));

TEST(Lognormal, MeanIsExpOfMuPlusHalfSigmaSquared) {
  std::mt19937_64 rng(5);
  const double mu = 1.0, sigma = 0.5;
  const Moments m = moments_of(kSamples, [&] { return lognormal(rng, mu, sigma); });
  EXPECT_NEAR(m.mean / std::exp(mu + sigma * sigma / 2), 1.0, 0.01);
}

TEST(WeightedChoice, PicksInProportionToWeightsAndNeverAZeroWeight) {
  std::mt19937_64 rng(6);
  const WeightedChoice choice({0.0, 1.0, 3.0, 0.0});
  int counts[4] = {};
  for (int i = 0; i < kSamples; ++i) ++counts[choice.sample(rng)];
  EXPECT_EQ(counts[0], 0);
  EXPECT_EQ(counts[3], 0);
  EXPECT_NEAR(counts[2] / static_cast<double>(kSamples), 0.75, 0.01);
}

TEST(ZipfSampler, FrequenciesFallAsAPowerOfTheValue) {
  std::mt19937_64 rng(7);
  const ZipfSampler zipf(1, 100, 1.0);
  int ones = 0, twos = 0;
  for (int i = 0; i < kSamples; ++i) {
    const std::int64_t v = zipf.sample(rng);
    ASSERT_GE(v, 1);
    ASSERT_LE(v, 100);
    ones += v == 1;
    twos += v == 2;
  }
  // P(1) = 1 / H(100) = 0.1928; P(1) / P(2) = 2^alpha = 2.
  EXPECT_NEAR(ones / static_cast<double>(kSamples), 0.1928, 0.005);
  EXPECT_NEAR(static_cast<double>(ones) / twos, 2.0, 0.06);
}

TEST(DeriveSeed, GivesDistinctSeedsPerStreamAndSeed) {
  EXPECT_NE(derive_seed(1, 0), derive_seed(1, 1));
  EXPECT_NE(derive_seed(1, 0), derive_seed(2, 0));
  EXPECT_EQ(derive_seed(42, 3), derive_seed(42, 3));
}

}  // namespace
}  // namespace twinfer
