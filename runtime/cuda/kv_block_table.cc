#include "runtime/cuda/kv_block_table.h"

#include <cassert>

namespace twinfer::runtime {

KvBlockTable::KvBlockTable(std::int64_t blocks, int block_tokens)
    : total_blocks_(blocks), block_tokens_(block_tokens) {
  assert(blocks >= 1 && block_tokens >= 1);
  free_.reserve(static_cast<std::size_t>(blocks));
  for (std::int64_t b = blocks - 1; b >= 0; --b) free_.push_back(static_cast<int>(b));
}

std::int32_t KvBlockTable::length(RequestId id) const {
  const auto it = sequences_.find(id);
  return it == sequences_.end() ? 0 : it->second.length;
}

std::int64_t KvBlockTable::blocks_needed(RequestId id, std::int32_t new_length) const {
  const auto it = sequences_.find(id);
  const std::int64_t held = it == sequences_.end() ? 0 : static_cast<std::int64_t>(it->second.blocks.size());
  const std::int64_t wanted = (static_cast<std::int64_t>(new_length) + block_tokens_ - 1) / block_tokens_;
  return wanted > held ? wanted - held : 0;
}

const std::vector<int>& KvBlockTable::extend(RequestId id, std::int32_t new_length) {
  const std::int64_t needed = blocks_needed(id, new_length);
  assert(needed <= free_blocks());
  Sequence& sequence = sequences_[id];
  assert(new_length >= sequence.length);
  for (std::int64_t i = 0; i < needed; ++i) {
    sequence.blocks.push_back(free_.back());
    free_.pop_back();
  }
  sequence.length = new_length;
  return sequence.blocks;
}

void KvBlockTable::release(RequestId id) {
  const auto it = sequences_.find(id);
  if (it == sequences_.end()) return;
  // Pushed in reverse so that the sequence's first block is taken again first.
  for (auto b = it->second.blocks.rbegin(); b != it->second.blocks.rend(); ++b) free_.push_back(*b);
  sequences_.erase(it);
}

}  // namespace twinfer::runtime
