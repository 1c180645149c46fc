#include "traces/sampling.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace twinfer {

namespace {

std::vector<double> zipf_weights(std::int64_t min, std::int64_t max, double alpha) {
  assert(1 <= min && min <= max && alpha >= 0);
  std::vector<double> weights;
  weights.reserve(static_cast<std::size_t>(max - min + 1));
  for (std::int64_t v = min; v <= max; ++v) weights.push_back(std::pow(static_cast<double>(v), -alpha));
  return weights;
}

}  // namespace

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

double uniform_open01(std::mt19937_64& rng) { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; }

double standard_normal(std::mt19937_64& rng) {
  // The polar form needs only log and sqrt, which vary less across math libraries than sin/cos.
  while (true) {
    const double u = 2.0 * uniform01(rng) - 1.0;
    const double v = 2.0 * uniform01(rng) - 1.0;
    const double s = u * u + v * v;
    if (s > 0.0 && s < 1.0) return u * std::sqrt(-2.0 * std::log(s) / s);
  }
}

double exponential(std::mt19937_64& rng, double mean) {
  assert(mean > 0);
  return -mean * std::log(uniform_open01(rng));
}

double gamma_variate(std::mt19937_64& rng, double shape, double scale) {
  assert(shape > 0 && scale > 0);
  if (shape < 1.0) {
    // Gamma(k) = Gamma(k + 1) * U^(1/k): Marsaglia and Tsang's method needs k >= 1.
    const double boosted = gamma_variate(rng, shape + 1.0, 1.0);
    return scale * boosted * std::pow(uniform_open01(rng), 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    const double x = standard_normal(rng);
    const double t = 1.0 + c * x;
    if (t <= 0.0) continue;
    const double v = t * t * t;
    const double u = uniform_open01(rng);
    // The squeeze accepts most draws without a log.
    if (u < 1.0 - 0.0331 * (x * x) * (x * x)) return scale * d * v;
    if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return scale * d * v;
  }
}

double lognormal(std::mt19937_64& rng, double mu, double sigma) {
  return std::exp(mu + sigma * standard_normal(rng));
}

WeightedChoice::WeightedChoice(const std::vector<double>& weights) {
  assert(!weights.empty());
  double sum = 0;
  cumulative_.reserve(weights.size());
  for (double w : weights) {
    assert(w >= 0);
    sum += w;
    cumulative_.push_back(sum);
  }
  assert(sum > 0);
}

std::size_t WeightedChoice::sample(std::mt19937_64& rng) const {
  const double target = uniform01(rng) * cumulative_.back();
  const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), target);
  // target < total, so it is found unless rounding put it at the very end.
  return std::min(static_cast<std::size_t>(it - cumulative_.begin()), cumulative_.size() - 1);
}

ZipfSampler::ZipfSampler(std::int64_t min, std::int64_t max, double alpha)
    : min_(min), choice_(zipf_weights(min, max, alpha)) {}

std::int64_t ZipfSampler::sample(std::mt19937_64& rng) const {
  return min_ + static_cast<std::int64_t>(choice_.sample(rng));
}

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  std::uint64_t z = seed + (stream + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace twinfer
