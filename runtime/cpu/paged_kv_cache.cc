#include "runtime/cpu/paged_kv_cache.h"

#include <cassert>

namespace twinfer::runtime {

PagedKvCache::PagedKvCache(std::int64_t blocks, int block_tokens, int layers, int kv_dim)
    : block_count_(blocks),
      block_tokens_(block_tokens),
      layers_(layers),
      kv_dim_(kv_dim),
      data_(static_cast<std::size_t>(blocks) * block_tokens * layers * kv_dim * 2),
      next_(static_cast<std::size_t>(blocks), -1) {
  assert(blocks > 0 && blocks <= INT32_MAX && block_tokens > 0);
  free_.reserve(static_cast<std::size_t>(blocks));
  for (std::int64_t b = blocks - 1; b >= 0; --b) free_.push_back(static_cast<std::int32_t>(b));
}

std::int32_t PagedKvCache::length(RequestId id) const {
  auto it = chains_.find(id);
  return it == chains_.end() ? 0 : it->second.length;
}

std::int32_t PagedKvCache::first_block(RequestId id) const {
  auto it = chains_.find(id);
  return it == chains_.end() ? -1 : it->second.first;
}

std::int64_t PagedKvCache::blocks_needed(RequestId id, std::int32_t tokens) const {
  const std::int64_t held = length(id);
  const std::int64_t blocks_now = (held + block_tokens_ - 1) / block_tokens_;
  const std::int64_t blocks_after = (held + tokens + block_tokens_ - 1) / block_tokens_;
  return blocks_after - blocks_now;
}

void PagedKvCache::append(RequestId id, std::int32_t tokens, std::int32_t* block_of, std::int32_t* offset_of) {
  assert(blocks_needed(id, tokens) <= free_blocks());
  Chain& chain = chains_[id];
  for (std::int32_t i = 0; i < tokens; ++i) {
    const std::int32_t offset = chain.length % block_tokens_;
    if (offset == 0) {
      const std::int32_t block = free_.back();
      free_.pop_back();
      next_[static_cast<std::size_t>(block)] = -1;
      if (chain.last >= 0) next_[static_cast<std::size_t>(chain.last)] = block;
      if (chain.first < 0) chain.first = block;
      chain.last = block;
    }
    block_of[i] = chain.last;
    offset_of[i] = offset;
    ++chain.length;
  }
}

void PagedKvCache::release(RequestId id) {
  auto it = chains_.find(id);
  if (it == chains_.end()) return;
  for (std::int32_t b = it->second.first; b >= 0; b = next_[static_cast<std::size_t>(b)]) free_.push_back(b);
  chains_.erase(it);
}

}  // namespace twinfer::runtime
