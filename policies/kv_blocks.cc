#include "policies/kv_blocks.h"

#include <algorithm>
#include <cassert>
#include <climits>

#include "policies/worker_state.h"

namespace twinfer {

BlockKeyMap::BlockKeyMap(std::int64_t blocks) {
  if (blocks <= 0) return;
  std::size_t n = 16;
  while (n < static_cast<std::size_t>(blocks) * 2) n *= 2;
  slots_.resize(n);
  mask_ = n - 1;
}

void BlockKeyMap::grow() {
  std::vector<Slot> old;
  old.swap(slots_);
  const std::size_t n = old.empty() ? 16 : old.size() * 2;
  slots_.assign(n, Slot{});
  mask_ = n - 1;
  for (const Slot& s : old) {
    if (s.block < 0) continue;
    std::size_t i = s.high & mask_;
    while (slots_[i].block >= 0) i = (i + 1) & mask_;
    slots_[i] = s;
  }
}

// Backward-shift deletion: later entries of the probe run move into the hole when their home slot
// is at or before it, so that no tombstone is left.
void BlockKeyMap::erase(std::uint64_t key, std::int32_t block) {
  std::size_t hole = high_of(key) & mask_;
  while (slots_[hole].block != block) {
    assert(slots_[hole].block >= 0 && "erasing a block that is not there");
    hole = (hole + 1) & mask_;
  }
  for (std::size_t i = (hole + 1) & mask_;; i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (s.block < 0) break;
    const std::size_t home = s.high & mask_;
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
    : cap_(cap),
      free_(cap.blocks_total),
      by_key_(cap.prefix_caching ? cap.blocks_total : 0),
      host_by_key_(cap.prefix_caching ? cap.host_blocks : 0) {
  if (!cap_.prefix_caching) cap_.host_blocks = 0;
}

namespace {

// Walks a run of cached keys at the speed of memory rather than of its latency: while block i is
// read, the slots of the keys kSlotsAhead further on and the blocks kBlocksAhead further on load.
constexpr std::int64_t kSlotsAhead = 8;
constexpr std::int64_t kBlocksAhead = 4;

// Calls visit(block) for each block cached under the keys `keys` gives from its next one, in
// order, while one is, at most `max_blocks`; moves `keys` past them and returns how many.
template <typename KeyOf, typename PrefetchBlock, typename Visit>
std::int64_t walk_cached(const BlockKeyMap& map, KeyOf key_of, PrefixKeys& keys, std::int64_t max_blocks,
                         PrefetchBlock prefetch_block, Visit visit) {
  PrefixKeys slots = keys;
  PrefixKeys blocks = keys;
  std::int64_t slots_n = 0;
  std::int64_t blocks_n = 0;
  std::int64_t n = 0;
  for (; n < max_blocks; ++n) {
    for (; slots_n < std::min(n + kSlotsAhead, max_blocks); ++slots_n) map.prefetch(slots.next());
    for (; blocks_n < std::min(n + kBlocksAhead, max_blocks); ++blocks_n) {
      const std::int32_t b = map.find(blocks.next(), key_of);
      if (b >= 0) prefetch_block(b);
    }
    const std::int32_t b = map.find(keys.peek(), key_of);
    if (b < 0) break;
    keys.next();
    visit(b);
  }
  return n;
}

}  // namespace

PrefixHit KvBlocks::lookup(PrefixKeys keys, std::int64_t max_blocks) const {
  PrefixHit hit;
  if (!cap_.prefix_caching) return hit;
  hit.blocks = walk_cached(
      by_key_, key_of(), keys, max_blocks, [this](BlockId b) { prefetch_block(b); },
      [&](BlockId b) { hit.free_blocks += blocks_[static_cast<std::size_t>(b)].refs == 0 ? 1 : 0; });
  if (cap_.host_blocks == 0) return hit;
  for (; hit.blocks < max_blocks; ++hit.blocks) {
    const std::uint64_t key = keys.peek();
    const BlockId b = by_key_.find(key, key_of());
    if (b >= 0) {
      hit.free_blocks += blocks_[static_cast<std::size_t>(b)].refs == 0 ? 1 : 0;
    } else if (host_find(key) >= 0) {
      ++hit.free_blocks;
    } else {
      break;
    }
    keys.next();
  }
  return hit;
}

KvBlocks::BlockId KvBlocks::take_cached(std::uint64_t key) {
  const BlockId b = by_key_.find(key, key_of());
  if (b < 0) return -1;
  if (block(b).refs++ == 0) --free_;
  return b;
}

std::int64_t KvBlocks::take_cached(PrefixKeys& keys, std::int64_t max_blocks, std::vector<BlockId>& table) {
  if (!cap_.prefix_caching) return 0;
  return walk_cached(
      by_key_, key_of(), keys, max_blocks, [this](BlockId b) { prefetch_block(b); },
      [&](BlockId b) {
        if (block(b).refs++ == 0) --free_;
        table.push_back(b);
      });
}

std::int64_t KvBlocks::take_cached(PrefixKeys& keys, std::int64_t max_blocks, std::vector<BlockId>& table,
                                   std::vector<HostHit>& host_hits) {
  const std::size_t first = table.size(), first_hit = host_hits.size();
  std::int64_t n = take_cached(keys, max_blocks, table);
  if (cap_.host_blocks == 0) return n;
  for (; n < max_blocks; ++n) {
    const std::uint64_t key = keys.peek();
    const BlockId b = by_key_.find(key, key_of());
    if (b >= 0) {
      if (block(b).refs++ == 0) --free_;
      table.push_back(b);
    } else {
      const std::int32_t h = host_find(key);
      if (h < 0) break;
      table.push_back(-1);
      host_hits.push_back(HostHit{key, h});
    }
    keys.next();
  }
  touch_host_copies(table, first, host_hits, first_hit);
  return n;
}

void KvBlocks::touch_host_copies(const std::vector<BlockId>& table, std::size_t first,
                                 const std::vector<HostHit>& host_hits, std::size_t first_hit) {
  std::size_t hit = host_hits.size();
  for (std::size_t i = table.size(); i-- > first;) {
    std::int32_t h;
    if (table[i] >= 0) {
      h = host_find(block(table[i]).key);
    } else {
      assert(hit > first_hit);
      h = host_hits[--hit].host_block;
    }
    if (h >= 0) host_touch(h);
  }
}

KvBlocks::BlockId KvBlocks::load(const HostHit& hit) {
  BlockId b = by_key_.find(hit.key, key_of());
  if (b >= 0) {  // another sequence of the same step loaded it first
    if (block(b).refs++ == 0) --free_;
    return b;
  }
  assert(host_find(hit.key) == hit.host_block && "a host hit outlived its block");
  b = allocate();
  cache(b, hit.key);
  transfers_.loads.push_back(KvCopy{b, hit.host_block});
  ++host_loads_;
  return b;
}

void KvBlocks::take_transfers(KvTransfers& out) {
  if (out.empty()) {  // the usual case: hand the lists over, keep out's (cleared) buffers for the next
    std::swap(out, transfers_);
    return;
  }
  out.stores.insert(out.stores.end(), transfers_.stores.begin(), transfers_.stores.end());
  out.loads.insert(out.loads.end(), transfers_.loads.begin(), transfers_.loads.end());
  transfers_.clear();
}

void KvBlocks::host_unlink(std::int32_t h) {
  HostBlock& x = host_[static_cast<std::size_t>(h)];
  (x.prev >= 0 ? host_[static_cast<std::size_t>(x.prev)].next : host_lru_) = x.next;
  (x.next >= 0 ? host_[static_cast<std::size_t>(x.next)].prev : host_mru_) = x.prev;
  x.prev = x.next = -1;
}

void KvBlocks::host_link_last(std::int32_t h) {
  HostBlock& x = host_[static_cast<std::size_t>(h)];
  x.prev = host_mru_;
  x.next = -1;
  (host_mru_ >= 0 ? host_[static_cast<std::size_t>(host_mru_)].next : host_lru_) = h;
  host_mru_ = h;
}

void KvBlocks::host_touch(std::int32_t h) {
  if (h == host_mru_) return;
  host_unlink(h);
  host_link_last(h);
}

void KvBlocks::store_to_host(BlockId b, std::uint64_t key) {
  std::int32_t h = host_find(key);
  if (h >= 0) return;  // as vLLM's offloading skips a block offloaded already, leaving its recency
  const auto key_of_host = [this](std::int32_t i) { return host_[static_cast<std::size_t>(i)].key; };
  if (static_cast<std::int64_t>(host_.size()) < cap_.host_blocks) {
    h = static_cast<std::int32_t>(host_.size());
    host_.emplace_back();
  } else {
    h = host_lru_;
    host_unlink(h);
    host_by_key_.erase(host_[static_cast<std::size_t>(h)].key, h);
    ++host_evictions_;
  }
  host_[static_cast<std::size_t>(h)].key = key;
  host_by_key_.insert(key, h, key_of_host);
  host_link_last(h);
  transfers_.stores.push_back(KvCopy{b, h});
  ++host_stores_;
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
    b = pop_free_front();
    Block& evicted = block(b);
    if (evicted.keyed) {
      by_key_.erase(evicted.key, b);
      evicted.keyed = false;
      ++evictions_;
      if (record_events_) events_.push_back(KvEvent{evicted.key, KvEventKind::kRemoved});
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
    assert(n <= free_ && "allocating from a full KV cache");
    // Blocks never used first; then the head of the free queue, whose victims are found before
    // any is taken so that the slots of their keys load together.
    const std::int64_t fresh = std::min<std::int64_t>(n, cap_.blocks_total - static_cast<std::int64_t>(blocks_.size()));
    for (std::int64_t i = 0; i < fresh; ++i) table.push_back(allocate());
    if (n > fresh) prefetch_victims(n - fresh);
    for (std::int64_t i = fresh; i < n; ++i) table.push_back(allocate());
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
  for (std::size_t i = table.size(); i-- > 0;) {
    if (i >= static_cast<std::size_t>(kBlocksAhead)) prefetch_block(table[i - static_cast<std::size_t>(kBlocksAhead)]);
    release(table[i]);
  }
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
  ++free_;
  push_free_back(b);
}

void KvBlocks::cache(BlockId b, std::uint64_t key) {
  if (!cap_.prefix_caching) return;
  Block& x = block(b);
  if (x.keyed) return;
  if (!by_key_.insert(key, b, key_of())) return;
  x.key = key;
  x.keyed = true;
  if (record_events_) events_.push_back(KvEvent{key, KvEventKind::kStored});
  if (cap_.host_blocks > 0) store_to_host(b, key);
}

void KvBlocks::cache(PrefixKeys& keys, const std::vector<BlockId>& table, std::int64_t full) {
  if (!cap_.prefix_caching) return;
  assert(full <= static_cast<std::int64_t>(table.size()));
  PrefixKeys ahead = keys;
  while (keys.visited() < full) {
    for (; ahead.visited() < std::min(keys.visited() + kSlotsAhead, full);) {
      prefetch_block(table[static_cast<std::size_t>(ahead.visited())]);
      by_key_.prefetch(ahead.next());
    }
    const BlockId b = table[static_cast<std::size_t>(keys.visited())];
    cache(b, keys.next());
  }
}

void KvBlocks::push_free_back(BlockId b) {
  queue_.push_back(Queued{b, ++block(b).stamp});
  // Stale entries (blocks taken back since they were queued) are dropped once they outnumber the
  // queued blocks (the free ones less those never used) by far, so that the queue stays within
  // twice its blocks and a drop costs O(1) per entry pushed.
  const auto queued = static_cast<std::size_t>(free_ - (cap_.blocks_total - static_cast<std::int64_t>(blocks_.size())));
  if (queue_.size() - queue_head_ <= 2 * queued + 1024) return;
  std::size_t kept = 0;
  for (std::size_t i = queue_head_; i < queue_.size(); ++i) {
    if (in_queue(queue_[i])) queue_[kept++] = queue_[i];
  }
  queue_.resize(kept);
  queue_head_ = 0;
  assert(kept == queued);
}

KvBlocks::BlockId KvBlocks::pop_free_front() {
  while (!in_queue(queue_[queue_head_])) ++queue_head_;
  const BlockId b = queue_[queue_head_++].block;
  // The entries before the head are dropped once they are half the array.
  if (queue_head_ >= 1024 && queue_head_ * 2 >= queue_.size()) {
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(queue_head_));
    queue_head_ = 0;
  }
  return b;
}

void KvBlocks::prefetch_victims(std::int64_t n) const {
  const std::size_t end = std::min(queue_.size(), queue_head_ + static_cast<std::size_t>(n));
  for (std::size_t i = queue_head_; i < end; ++i) prefetch_block(queue_[i].block);
  for (std::size_t i = queue_head_; i < end; ++i) {
    const Block& x = blocks_[static_cast<std::size_t>(queue_[i].block)];
    if (x.keyed && in_queue(queue_[i])) by_key_.prefetch(x.key);
  }
}

std::int64_t PrefixReuse::add(const Request& r) {
  PrefixKeys keys(r.prefix, r.input_tokens, r.id, block_tokens_);
  const std::int64_t most = max_prefix_hit_blocks(prompt_length(r), block_tokens_);
  std::int64_t hit = 0;
  const auto key_of = [this](std::int32_t i) { return keys_[static_cast<std::size_t>(i)]; };
  while (hit < most && seen_.find(keys.peek(), key_of) >= 0) {
    keys.next();
    ++hit;
  }
  // Only blocks the ids cover can be found by another request; the rest have private keys.
  const std::int64_t full = std::int64_t{r.input_tokens} / block_tokens_;
  while (keys.visited() < full && keys.next_is_shared()) {
    const std::uint64_t key = keys.next();
    assert(keys_.size() < static_cast<std::size_t>(INT32_MAX));
    if (seen_.insert(key, static_cast<std::int32_t>(keys_.size()), key_of)) keys_.push_back(key);
  }
  return hit * block_tokens_;
}

}  // namespace twinfer
