// The CPU backend's paged KV cache: one pool of blocks allocated at construction. Which blocks hold
// which sequence's positions is the worker's KvBlocks' decision, passed in each step's block tables.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace twinfer::runtime {

// Block layout: [layer][K or V][block_tokens][kv_dim] floats, so that the keys (or values) of one
// layer in one block are `block_tokens` contiguous rows of kv_dim floats. Thread safety: one thread
// at a time.
class PagedKvCache {
 public:
  PagedKvCache(std::int64_t blocks, int block_tokens, int layers, int kv_dim)
      : block_tokens_(block_tokens),
        layers_(layers),
        kv_dim_(kv_dim),
        data_(static_cast<std::size_t>(blocks) * block_tokens * layers * kv_dim * 2) {
    assert(blocks > 0 && block_tokens > 0);
  }

  int block_tokens() const { return block_tokens_; }
  // Floats of one block (every layer's keys and values), contiguous from block(b).
  std::size_t block_floats() const { return static_cast<std::size_t>(layers_) * 2 * block_tokens_ * kv_dim_; }
  float* block(std::int32_t b) { return data_.data() + offset(b, 0, 0); }
  float* keys(std::int32_t block, int layer) { return data_.data() + offset(block, layer, 0); }
  float* values(std::int32_t block, int layer) { return data_.data() + offset(block, layer, 1); }

 private:
  std::size_t offset(std::int32_t block, int layer, int kind) const {
    return ((static_cast<std::size_t>(block) * layers_ + layer) * 2 + kind) * block_tokens_ * kv_dim_;
  }

  int block_tokens_;
  int layers_;
  int kv_dim_;
  std::vector<float> data_;
};

}  // namespace twinfer::runtime
