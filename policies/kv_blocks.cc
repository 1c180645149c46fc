#include "policies/kv_blocks.h"

#include <cassert>

#include "policies/worker_state.h"

namespace twinfer {

KvBlocks::KvBlocks(KvCapacity cap) : cap_(cap), free_(cap.blocks_total) {}

PrefixHit KvBlocks::lookup(PrefixKeys keys, std::int64_t max_blocks) const {
  PrefixHit hit;
  if (!cap_.prefix_caching) return hit;
  while (hit.blocks < max_blocks) {
    const auto it = by_key_.find(keys.next());
    if (it == by_key_.end()) break;
    ++hit.blocks;
    if (blocks_[static_cast<std::size_t>(it->second)].refs == 0) ++hit.free_blocks;
  }
  return hit;
}

KvBlocks::BlockId KvBlocks::take_cached(std::uint64_t key) {
  const auto it = by_key_.find(key);
  if (it == by_key_.end()) return -1;
  const BlockId b = it->second;
  if (block(b).refs++ == 0) {
    unlink(b);
    --free_;
  }
  return b;
}

KvBlocks::BlockId KvBlocks::allocate() {
  assert(free_ > 0 && "allocating from a full KV cache");
  --free_;
  BlockId b;
  const bool fresh_left = static_cast<std::int64_t>(blocks_.size()) < cap_.blocks_total;
  if (fresh_left && (cap_.prefix_caching || tail_ < 0)) {
    b = static_cast<BlockId>(blocks_.size());
    blocks_.emplace_back();
  } else {
    b = cap_.prefix_caching ? head_ : tail_;
    unlink(b);
    Block& evicted = block(b);
    if (evicted.keyed) {
      by_key_.erase(evicted.key);
      evicted.keyed = false;
      ++evictions_;
    }
  }
  block(b).refs = 1;
  return b;
}

void KvBlocks::release(BlockId b) {
  Block& x = block(b);
  assert(x.refs > 0 && "releasing a block no sequence holds");
  if (--x.refs > 0) return;
  push_free_back(b);
  ++free_;
}

void KvBlocks::cache(BlockId b, std::uint64_t key) {
  if (!cap_.prefix_caching) return;
  Block& x = block(b);
  if (x.keyed) return;
  if (!by_key_.emplace(key, b).second) return;
  x.key = key;
  x.keyed = true;
}

void KvBlocks::unlink(BlockId b) {
  Block& x = block(b);
  (x.prev >= 0 ? block(x.prev).next : head_) = x.next;
  (x.next >= 0 ? block(x.next).prev : tail_) = x.prev;
  x.prev = x.next = -1;
}

void KvBlocks::push_free_back(BlockId b) {
  Block& x = block(b);
  x.prev = tail_;
  x.next = -1;
  (tail_ >= 0 ? block(tail_).next : head_) = b;
  tail_ = b;
}

std::int64_t PrefixReuse::add(const Request& r) {
  PrefixKeys keys(r.prefix, r.input_tokens, r.id, block_tokens_);
  const std::int64_t most = max_prefix_hit_blocks(prompt_length(r), block_tokens_);
  std::int64_t hit = 0;
  while (hit < most && seen_.count(keys.peek()) > 0) {
    keys.next();
    ++hit;
  }
  // Only blocks the ids cover can be found by another request; the rest have private keys.
  const std::int64_t full = std::int64_t{r.input_tokens} / block_tokens_;
  while (keys.visited() < full) seen_.insert(keys.next());
  return hit * block_tokens_;
}

}  // namespace twinfer
