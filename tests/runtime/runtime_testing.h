// Helpers for runtime tests: the tiny CPU config and small traces.
#pragma once

#include <string>
#include <vector>

#include "serving/run_config.h"
#include "runtime/backend/backend.h"
#include "traces/synthetic.h"
#include "traces/trace.h"

namespace twinfer::testing {

inline RunConfig cpu_tiny_config(const std::vector<std::string>& overrides = {}) {
  return load_run_config(std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json", overrides);
}

// One of the shipped configs by file name (configs/<name>), with overrides ("a.b=value").
inline RunConfig cpu_config(const std::string& name, const std::vector<std::string>& overrides = {}) {
  return load_run_config(std::string(TWINFER_SOURCE_DIR) + "/configs/" + name, overrides);
}

// `n` requests over about n / rate_rps seconds, short prompts and outputs.
inline Trace small_trace(int n, double rate_rps, std::uint64_t seed = 3, int output_mean = 12) {
  nlohmann::json spec = {{"requests", n},
                         {"rate_rps", rate_rps},
                         {"arrival", "poisson"},
                         {"input", {{"kind", "uniform"}, {"min", 8}, {"max", 120}}},
                         {"output", {{"kind", "uniform"}, {"min", 2}, {"max", 2 * output_mean}}}};
  return generate_synthetic(parse_synthetic_spec(spec, "test"), seed);
}

// A two-layer transformer (hidden 64, 4 heads, 2 KV heads, FFN 128, vocab 97) that backend tests
// can check against a naive reference in milliseconds.
inline runtime::TransformerConfig tiny_transformer(int max_context = 256, std::uint64_t seed = 42) {
  runtime::TransformerConfig c;
  c.layers = 2;
  c.hidden = 64;
  c.heads = 4;
  c.kv_heads = 2;
  c.ffn_hidden = 128;
  c.vocab = 97;
  c.max_context = max_context;
  c.seed = seed;
  return c;
}

inline runtime::BackendLimits small_limits(std::int64_t kv_blocks = 64, int block_tokens = 16) {
  runtime::BackendLimits l;
  l.kv_blocks = kv_blocks;
  l.block_tokens = block_tokens;
  l.max_batch_tokens = 256;
  l.max_batch_sequences = 8;
  return l;
}

}  // namespace twinfer::testing
