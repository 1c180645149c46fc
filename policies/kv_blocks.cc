#include "policies/kv_blocks.h"

#include <algorithm>
#include <cassert>

#include "policies/worker_state.h"

namespace twinfer {

BlockKeyMap::BlockKeyMap(std::int64_t blocks) {
  if (blocks <= 0) return;
  std::size_t n = 16;
  while (n < static_cast<std::size_t>(blocks) * 2) n *= 2;
  slots_.resize(n);
  mask_ = n - 1;
}

std::int32_t BlockKeyMap::find(std::uint64_t key) const {
  if (slots_.empty()) return -1;
  for (std::size_t i = key & mask_;; i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.block < 0) return -1;
    if (s.key == key) return s.block;
  }
}

bool BlockKeyMap::insert(std::uint64_t key, std::int32_t block) {
  if (static_cast<std::size_t>(size_ + 1) * 2 > slots_.size()) grow();
  for (std::size_t i = key & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.block < 0) {
      s = Slot{key, block};
      ++size_;
      return true;
    }
    if (s.key == key) return false;
  }
}

void BlockKeyMap::grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  const std::size_t n = old.empty() ? 16 : old.size() * 2;
  slots_.assign(n, Slot{});
  mask_ = n - 1;
  size_ = 0;
  for (const Slot& s : old) {
    if (s.block >= 0) insert(s.key, s.block);
  }
}

// Backward-shift deletion: later entries of the probe run move into the hole when their home slot
// is at or before it, so that no tombstone is left.
void BlockKeyMap::erase(std::uint64_t key) {
  std::size_t hole = key & mask_;
  while (slots_[hole].key != key || slots_[hole].block < 0) {
    assert(slots_[hole].block >= 0 && "erasing a key that is not there");
    hole = (hole + 1) & mask_;
  }
  for (std::size_t i = (hole + 1) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.block < 0) break;
    const std::size_t home = s.key & mask_;
    // s may move to the hole when its home is not in (hole, i] cyclically.
    const bool home_after_hole = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
    if (home_after_hole) continue;
    slots_[hole] = s;
    hole = i;
  }
  slots_[hole] = Slot{};
  --size_;
}

KvBlocks::KvBlocks(KvCapacity cap)
    : cap_(cap), free_(cap.blocks_total), by_key_(cap.prefix_caching ? cap.blocks_total : 0) {}

PrefixHit KvBlocks::lookup(PrefixKeys keys, std::int64_t max_blocks) const {
  PrefixHit hit;
  if (!cap_.prefix_caching) return hit;
  while (hit.blocks < max_blocks) {
    const BlockId b = by_key_.find(keys.next());
    if (b < 0) break;
    ++hit.blocks;
    if (blocks_[static_cast<std::size_t>(b)].refs == 0) ++hit.free_blocks;
  }
  return hit;
}

KvBlocks::BlockId KvBlocks::take_cached(std::uint64_t key) {
  const BlockId b = by_key_.find(key);
  if (b < 0) return -1;
  if (block(b).refs++ == 0) {
    unlink(b);
    --free_;
  }
  return b;
}

KvBlocks::BlockId KvBlocks::allocate() {
  assert(free_ > 0 && "allocating from a full KV cache");
  --free_;
  if (!cap_.prefix_caching) {
    if (stack_.empty()) return static_cast<BlockId>(fresh_++);
    const BlockId b = stack_.back();
    stack_.pop_back();
    return b;
  }
  BlockId b;
  if (static_cast<std::int64_t>(blocks_.size()) < cap_.blocks_total) {
    b = static_cast<BlockId>(blocks_.size());
    blocks_.emplace_back();
  } else {
    b = head_;
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

void KvBlocks::take(std::int64_t n) {
  assert(!cap_.prefix_caching && n >= 0 && n <= free_ && "plan does not fit the KV cache");
  free_ -= n;
}

void KvBlocks::give(std::int64_t n) {
  free_ += n;
  assert(n >= 0 && free_ <= cap_.blocks_total);
}

void KvBlocks::allocate(std::int64_t n, std::vector<BlockId>& table) {
  if (cap_.prefix_caching) {
    for (std::int64_t i = 0; i < n; ++i) table.push_back(allocate());
    return;
  }
  assert(n <= free_ && "allocating from a full KV cache");
  free_ -= n;
  const auto reused = static_cast<std::int64_t>(std::min<std::size_t>(stack_.size(), static_cast<std::size_t>(n)));
  table.insert(table.end(), stack_.rbegin(), stack_.rbegin() + reused);
  stack_.resize(stack_.size() - static_cast<std::size_t>(reused));
  for (std::int64_t i = reused; i < n; ++i) table.push_back(static_cast<BlockId>(fresh_++));
}

void KvBlocks::release_all(const std::vector<BlockId>& table) {
  if (!cap_.prefix_caching) {
    stack_.insert(stack_.end(), table.rbegin(), table.rend());
    free_ += static_cast<std::int64_t>(table.size());
    return;
  }
  for (auto b = table.rbegin(); b != table.rend(); ++b) release(*b);
}

void KvBlocks::release(BlockId b) {
  if (!cap_.prefix_caching) {
    stack_.push_back(b);
    ++free_;
    return;
  }
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
  if (!by_key_.insert(key, b)) return;
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
  while (hit < most && seen_.find(keys.peek()) >= 0) {
    keys.next();
    ++hit;
  }
  // Only blocks the ids cover can be found by another request; the rest have private keys.
  const std::int64_t full = std::int64_t{r.input_tokens} / block_tokens_;
  while (keys.visited() < full && keys.next_is_shared()) seen_.insert(keys.next(), 0);
  return hit * block_tokens_;
}

}  // namespace twinfer
