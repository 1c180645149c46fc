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

// Prompts that share prefixes, as hash ids (BlockHashes): conversations, each a run of turns that
// re-send the whole context so far (a tenant's system prompt, then every earlier turn's new input
// and output) plus the turn's new input. Chat is a few turns with long answers; an agent loop is
// many turns whose new input is a tool's output and whose output is short. Each arrival goes to
// one of `conversations` open conversations, drawn uniformly; a conversation that has run its
// turns, or would pass max_context, is replaced by a new one.
struct PrefixSpec {
  int block_tokens = 64;                // tokens per hash id
  std::int64_t tenants = 0;             // distinct system prompts, one per tenant; 0: none
  LengthDistribution system_tokens{"constant", 1024, 1.0, 1.1, 0, 1 << 20};  // each system prompt's length
  std::int64_t conversations = 64;      // open at once
  LengthDistribution turns{"uniform", 4, 1.0, 1.1, 1, 8};  // turns per conversation
  std::int64_t max_context = 32768;     // tokens of context a conversation may reach
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
  // With a prefix: `input` is each turn's new input; input_tokens counts the whole context, and
  // the session key names the conversation ("c<n>").
  bool has_prefix = false;
  PrefixSpec prefix;
};

// Fills a spec from a JSON object; `where` names it in errors ("workload.synthetic"). Missing
// keys keep their defaults; unknown keys and out-of-range values throw twinfer::Error naming
// the key path. Example:
//   {"requests": 2000, "rate_rps": 33.3, "arrival": "gamma", "cv": 2,
//    "input": {"kind": "lognormal", "mean": 800, "sigma": 1.0, "max": 16384},
//    "prefix": {"block_tokens": 64, "tenants": 4, "system_tokens": {"kind": "constant", "mean": 2000},
//               "conversations": 200, "turns": {"kind": "uniform", "min": 2, "max": 10},
//               "max_context": 32768}}
SyntheticSpec parse_synthetic_spec(const nlohmann::json& spec, const std::string& where);

// Generates spec.requests requests: the first arrives at 0, the gaps follow the arrival process.
// The same spec and seed give the same trace on every platform. Each attribute (gaps, input,
// output, model, priority, session) draws from its own stream, so changing one part of the spec
// leaves the others' draws unchanged. REQUIRES: a spec that parse_synthetic_spec() would accept
// (throws twinfer::Error otherwise).
Trace generate_synthetic(const SyntheticSpec& spec, std::uint64_t seed);

}  // namespace twinfer
