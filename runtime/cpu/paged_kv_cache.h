// The CPU backend's paged KV cache: one pool of blocks allocated at construction, and per sequence
// a chain of blocks that grows as the sequence does.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/request.h"

namespace twinfer::runtime {

// Block layout: [layer][K or V][block_tokens][kv_dim] floats, so that the keys (or values) of one
// layer in one block are `block_tokens` contiguous rows of kv_dim floats.
//
// A sequence's blocks form a singly linked chain (next_block), so appending and walking never
// allocate. Thread safety: one thread at a time.
class PagedKvCache {
 public:
  PagedKvCache(std::int64_t blocks, int block_tokens, int layers, int kv_dim);

  // Tokens held for `id` (0 for an unknown id).
  std::int32_t length(RequestId id) const;
  // Blocks that appending `tokens` to `id` would take from the pool.
  std::int64_t blocks_needed(RequestId id, std::int32_t tokens) const;
  std::int64_t free_blocks() const { return static_cast<std::int64_t>(free_.size()); }
  std::int64_t blocks_used() const { return block_count_ - free_blocks(); }
  int block_tokens() const { return block_tokens_; }

  // Appends `tokens` positions to `id` and writes the (block, offset) of each new position to
  // block_of[i] and offset_of[i]. REQUIRES: blocks_needed(id, tokens) <= free_blocks().
  void append(RequestId id, std::int32_t tokens, std::int32_t* block_of, std::int32_t* offset_of);
  // Returns the sequence's blocks to the pool; no-op for an unknown id.
  void release(RequestId id);

  float* keys(std::int32_t block, int layer) { return data_.data() + offset(block, layer, 0); }
  float* values(std::int32_t block, int layer) { return data_.data() + offset(block, layer, 1); }

  // First block of `id`'s chain (-1 when empty) and the block after `block` (-1 at the end).
  std::int32_t first_block(RequestId id) const;
  std::int32_t next_block(std::int32_t block) const { return next_[static_cast<std::size_t>(block)]; }

 private:
  struct Chain {
    std::int32_t first = -1;
    std::int32_t last = -1;
    std::int32_t length = 0;
  };

  std::size_t offset(std::int32_t block, int layer, int kind) const {
    return ((static_cast<std::size_t>(block) * layers_ + layer) * 2 + kind) * block_tokens_ * kv_dim_;
  }

  std::int64_t block_count_;
  int block_tokens_;
  int layers_;
  int kv_dim_;
  std::vector<float> data_;
  std::vector<std::int32_t> next_;
  std::vector<std::int32_t> free_;  // a stack: the most recently freed block is reused first
  std::unordered_map<RequestId, Chain> chains_;
};

}  // namespace twinfer::runtime
