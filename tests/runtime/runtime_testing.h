// Helpers for runtime tests: the tiny CPU config and small traces.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "policies/kv_blocks.h"
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

// Block tables for backend tests, from the workers' own block manager (KvBlocks, without prefix
// caching): each sequence's table grows as its tokens do, as WorkerState grows it.
class BlockTables {
 public:
  explicit BlockTables(std::int64_t blocks, int block_tokens = 16) : kv_(KvCapacity{blocks, block_tokens, false}) {}

  // `id`'s part of a step: `tokens` new tokens after `cached`, its table grown to hold them.
  runtime::StepSequence step(RequestId id, std::int32_t cached, std::vector<std::int32_t> tokens, bool sample = true) {
    std::vector<std::int32_t>& table = tables_[id];
    const std::int64_t needed = kv_.blocks_for(std::int64_t{cached} + static_cast<std::int64_t>(tokens.size()));
    while (static_cast<std::int64_t>(table.size()) < needed) table.push_back(kv_.allocate());
    return runtime::StepSequence{id, cached, std::move(tokens), table, sample};
  }
  // Frees `id`'s blocks.
  void release(RequestId id) {
    for (std::int32_t b : tables_[id]) kv_.release(b);
    tables_.erase(id);
  }
  std::int64_t used() const { return kv_.total() - kv_.free(); }

 private:
  KvBlocks kv_;
  std::map<RequestId, std::vector<std::int32_t>> tables_;
};

}  // namespace twinfer::testing
