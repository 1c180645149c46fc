// Host-side bookkeeping of a paged KV cache: which pool blocks each sequence holds, and the free
// list. Knows nothing of the device; the CUDA backend uploads the block lists it keeps here.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "core/request.h"

namespace twinfer::runtime {

class KvBlockTable {
 public:
  // REQUIRES: blocks >= 1, block_tokens >= 1.
  KvBlockTable(std::int64_t blocks, int block_tokens);

  std::int64_t used_blocks() const { return total_blocks_ - static_cast<std::int64_t>(free_.size()); }
  std::int64_t free_blocks() const { return static_cast<std::int64_t>(free_.size()); }

  // Tokens cached for `id`; 0 for a sequence it does not hold.
  std::int32_t length(RequestId id) const;

  // Blocks that `id` lacks to hold `new_length` tokens.
  std::int64_t blocks_needed(RequestId id, std::int32_t new_length) const;

  // Records `new_length` tokens for `id`, taking blocks from the free list, lowest index first.
  // REQUIRES: new_length >= length(id), blocks_needed(id, new_length) <= free_blocks().
  // Returns the sequence's blocks in position order.
  const std::vector<int>& extend(RequestId id, std::int32_t new_length);

  // Returns the sequence's blocks to the free list; nothing for an unknown id.
  void release(RequestId id);

 private:
  struct Sequence {
    std::int32_t length = 0;
    std::vector<int> blocks;
  };

  std::int64_t total_blocks_;
  int block_tokens_;
  std::vector<int> free_;  // a stack: the back is taken first
  std::unordered_map<RequestId, Sequence> sequences_;
};

}  // namespace twinfer::runtime
