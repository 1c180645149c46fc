// Synthetic workloads: seeded arrival processes and token-length distributions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "traces/trace.h"

namespace twinfer {

// A token-length distribution. Samples are rounded to integers and clamped to [min, max].
//   constant     always `mean`
//   uniform      integers uniform in [min, max]
//   exponential  exponential with mean `mean`
//   lognormal    exp(N(mu, sigma^2)) with mu chosen so that the unclamped mean is `mean`
//   zipf         integers v in [min, max] with P(v) ~ v^-alpha (max - min <= 10,000,000)
struct LengthDistribution {
  std::string kind = "constant";
  double mean = 128;   // tokens; constant, exponential, lognormal
  double sigma = 1.0;  // lognormal: standard deviation of ln(length)
  double alpha = 1.1;  // zipf exponent, >= 0
  std::int32_t min = 1;
  std::int32_t max = 1 << 20;
};

// What to generate. JSON keys are the field names (see parse_synthetic_spec()).
struct SyntheticSpec {
  std::int64_t requests = 1000;
  double rate_rps = 10.0;          // mean arrival rate
  std::string arrival = "poisson";  // "poisson" or "gamma"
  double cv = 1.0;                 // gamma: coefficient of variation of inter-arrival times (1 = Poisson)
  LengthDistribution input{"lognormal", 512, 1.0, 1.1, 1, 1 << 20};
  LengthDistribution output{"lognormal", 128, 1.0, 1.1, 1, 1 << 20};
  std::vector<std::string> models;       // empty: every request uses the cluster's default model
  std::vector<double> model_weights;     // empty: equal weights; else one per model
  std::vector<int> priorities;           // empty: every request has priority 0
  std::vector<double> priority_weights;  // empty: equal weights; else one per priority
  double deadline_ms = 0;                // > 0: each request must complete this long after arrival
  std::int64_t sessions = 0;             // > 0: session keys "s0".."s<n-1>", uniformly drawn
};

// Fills a spec from a JSON object; `where` names it in errors ("workload.synthetic"). Missing
// keys keep their defaults; unknown keys and out-of-range values throw twinfer::Error naming
// the key path. Example:
//   {"requests": 2000, "rate_rps": 33.3, "arrival": "gamma", "cv": 2,
//    "input": {"kind": "lognormal", "mean": 800, "sigma": 1.0, "max": 16384}}
SyntheticSpec parse_synthetic_spec(const nlohmann::json& spec, const std::string& where);

// Generates spec.requests requests: the first arrives at 0, the gaps follow the arrival process.
// The same spec and seed give the same trace on every platform. Each attribute (gaps, input,
// output, model, priority, session) draws from its own stream, so changing one part of the spec
// leaves the others' draws unchanged. REQUIRES: a spec that parse_synthetic_spec() would accept
// (throws twinfer::Error otherwise).
Trace generate_synthetic(const SyntheticSpec& spec, std::uint64_t seed);

}  // namespace twinfer
