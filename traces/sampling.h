// Random variates drawn from std::mt19937_64 by our own methods (never std::*_distribution, whose
// algorithms differ between standard libraries), so a seed gives the same numbers everywhere.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace twinfer {

// Uniform in [0, 1), 53 random bits.
double uniform01(std::mt19937_64& rng);
// Uniform in (0, 1): safe to take the log of.
double uniform_open01(std::mt19937_64& rng);
// Standard normal, by the polar form of Box-Muller (one of the pair is used; no hidden state).
double standard_normal(std::mt19937_64& rng);
// Exponential with the given mean (> 0), by inversion.
double exponential(std::mt19937_64& rng, double mean);
// Gamma with shape k > 0 and scale theta > 0 (mean k*theta), by Marsaglia and Tsang (2000);
// shape < 1 samples shape + 1 and scales by U^(1/k).
double gamma_variate(std::mt19937_64& rng, double shape, double scale);
// exp(N(mu, sigma^2)).
double lognormal(std::mt19937_64& rng, double mu, double sigma);

// Picks index i with probability weights[i] / sum(weights). REQUIRES: weights non-empty,
// non-negative, with a positive sum.
class WeightedChoice {
 public:
  explicit WeightedChoice(const std::vector<double>& weights);
  std::size_t sample(std::mt19937_64& rng) const;

 private:
  std::vector<double> cumulative_;
};

// Integers v in [min, max] with P(v) proportional to v^-alpha, by inversion of a CDF table.
// REQUIRES: 1 <= min <= max, max - min small enough for a table (the caller bounds it), alpha >= 0.
class ZipfSampler {
 public:
  ZipfSampler(std::int64_t min, std::int64_t max, double alpha);
  std::int64_t sample(std::mt19937_64& rng) const;

 private:
  std::int64_t min_;
  WeightedChoice choice_;
};

// A well-mixed 64-bit value derived from a seed and a stream number, for seeding independent
// generators (SplitMix64 finalizer).
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

}  // namespace twinfer
