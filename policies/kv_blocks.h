// A worker's paged KV cache as blocks with ids: which blocks each sequence holds, which are free,
// and with prefix caching, which hold a prefix that later requests may reuse. Shared by the
// simulator and the runtime: the runtime's backends store each block's keys and values at the id
// this pool gives it, so that both run the same allocation, sharing and eviction.
//
// Prefix caching follows vLLM's automatic prefix caching: a full block is cached under the key of
// the prefix it ends (PrefixKeys); a block is held by reference count; a block no sequence holds
// returns to the free queue but keeps its key, so a later request may take it back from there
// (a hit) until an allocation evicts it. Allocation takes blocks never used first, then the least
// recently freed; a sequence frees its blocks last one first, so its tail is evicted before its
// head. Two sequences that compute the same block at once keep one copy cached (the first).
// Without prefix caching no block has a key and the most recently freed block is reused first.
//
// With a host tier (KvCapacity::host_blocks > 0), a second cache in host memory, as vLLM's CPU
// offloading (OffloadingConnector) and SGLang's hierarchical cache do: every block cached on the
// device is stored to the host tier too (write-through: the copy overlaps later steps; a key the
// host tier has already is not copied again), which evicts its least recently used block when full.
// A block's host copy becomes the most recently used when it is stored, and when a sequence that
// starts finds the block, on the device or in the tier: vLLM's LRU offloading manager touches the
// blocks of a request it schedules, last first, so that the head of a prefix is kept longest.
// A prompt's prefix then continues past the blocks cached on the device with those the host tier
// holds: each takes a new device block and a load from host memory before the step that uses it.
// The copies are the executor's to carry out (take_transfers()): the simulator times them over the
// host link, the runtime's backends copy the bytes.
#pragma once

#include <cstdint>
#include <vector>

#include "core/block_hashes.h"
#include "core/request.h"
#include "policies/batcher.h"
#include "policies/kv_events.h"
#include "policies/kv_transfers.h"

namespace twinfer {

// The cached prefix a request would find: its first `blocks` blocks, of which `free_blocks` are in
// the free queue now (taking them back leaves fewer blocks free).
struct PrefixHit {
  std::int64_t blocks = 0;
  std::int64_t free_blocks = 0;
};

// A block of a prompt's prefix found in the host tier only, to be loaded (KvBlocks::load).
struct HostHit {
  std::uint64_t key = 0;
  std::int32_t host_block = 0;
};

// Block ids by key: open addressing with linear probing in a table of at least twice as many slots
// as entries, so that caching and evicting a block allocate nothing once it is sized for the cache's
// blocks (each block holds at most one key); past half full it doubles. A slot is 8 bytes: the
// key's high 32 bits (which also pick its home slot; keys are hashes already) and the block. The
// full key is the block's own, read through `key_of(block)` only where two keys' high halves are
// equal, so that a worker's table stays small enough to stay in the processor's caches (30,000
// blocks: 512 KiB).
class BlockKeyMap {
 public:
  // Sized for `blocks` entries without growing.
  explicit BlockKeyMap(std::int64_t blocks = 0);
  // The block under `key`, or -1.
  template <class KeyOf>
  std::int32_t find(std::uint64_t key, KeyOf key_of) const {
    if (slots_.empty()) return -1;
    const std::uint32_t high = high_of(key);
    for (std::size_t i = high & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.block < 0) return -1;
      if (s.high == high && key_of(s.block) == key) return s.block;
    }
  }
  // False (and nothing changes) when `key` is there already.
  template <class KeyOf>
  bool insert(std::uint64_t key, std::int32_t block, KeyOf key_of) {
    if (static_cast<std::size_t>(size_ + 1) * 2 > slots_.size()) grow();
    const std::uint32_t high = high_of(key);
    for (std::size_t i = high & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.block < 0) {
        s = Slot{high, block};
        ++size_;
        return true;
      }
      if (s.high == high && key_of(s.block) == key) return false;
    }
  }
  // Removes `block`, which is there under `key`.
  void erase(std::uint64_t key, std::int32_t block);
  std::int64_t size() const { return size_; }
  // Starts loading the slot where a search for `key` begins, so that a walk over many keys waits
  // for memory once rather than once per key. Changes nothing.
  void prefetch(std::uint64_t key) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[high_of(key) & mask_]);
  }

 private:
  struct Slot {
    std::uint32_t high = 0;
    std::int32_t block = -1;  // -1: empty
  };
  static std::uint32_t high_of(std::uint64_t key) { return static_cast<std::uint32_t>(key >> 32); }
  void grow();

  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::int64_t size_ = 0;
};

// Thread safety: none; one driver thread owns it.
class KvBlocks {
 public:
  using BlockId = std::int32_t;

  KvBlocks() = default;
  explicit KvBlocks(KvCapacity cap);

  // False when the batcher does not track KV memory (blocks_total 0): then nothing is held.
  bool tracked() const { return cap_.blocks_total > 0; }
  bool prefix_caching() const { return cap_.prefix_caching; }
  const KvCapacity& capacity() const { return cap_; }
  std::int64_t total() const { return cap_.blocks_total; }
  // Blocks an allocation may take: never used, or held by no sequence (cached ones included).
  std::int64_t free() const { return free_; }
  int block_tokens() const { return cap_.block_tokens; }
  // Blocks needed to hold `tokens` tokens.
  std::int64_t blocks_for(std::int64_t tokens) const {
    return (tokens + cap_.block_tokens - 1) / cap_.block_tokens;
  }

  // The longest run of cached blocks whose keys `keys` gives from its next one, at most `max_blocks`:
  // on the device, then (with a host tier) on the device or in the host tier (a block found in the
  // host tier only counts as free: loading it takes a free block). Without prefix caching: none.
  PrefixHit lookup(PrefixKeys keys, std::int64_t max_blocks) const;
  // Takes a reference to the block cached under `key`, out of the free queue if it was there;
  // -1 when no block is cached under it.
  BlockId take_cached(std::uint64_t key);
  // Takes a reference to each cached block whose key `keys` gives from its next one, in order,
  // while one is cached, at most `max_blocks` (out of the free queue where it was there), and
  // appends them to `table`, moving `keys` past them. Returns how many. Without prefix caching:
  // none.
  std::int64_t take_cached(PrefixKeys& keys, std::int64_t max_blocks, std::vector<BlockId>& table);
  // As take_cached, then on through the run lookup() counts: a block cached on the device is taken,
  // one in the host tier only is appended to `table` as -1 and to `host_hits`, for load(). Takes no
  // free block, so that the loads of several sequences' prefixes evict none of the blocks they found.
  // Touches the host copies of the blocks it found, the last first.
  std::int64_t take_cached(PrefixKeys& keys, std::int64_t max_blocks, std::vector<BlockId>& table,
                           std::vector<HostHit>& host_hits);
  // The device block for a prefix block found in the host tier: the one cached under its key on the
  // device if one is by now (a reference taken), else a new block (allocate()) cached under the key,
  // with its load from the host tier queued. REQUIRES: free() > 0, hit from take_cached since the
  // last store.
  BlockId load(const HostHit& hit);
  // A block for new tokens: with prefix caching, one never used, else the least recently freed (its
  // key evicted); without, the most recently freed, else one never used.
  // REQUIRES: free() > 0.
  BlockId allocate();
  // Counts `n` blocks taken or given back without naming them, for an owner that needs no ids
  // (WorkerState without prefix caching or an executor that reads block tables). Never mixed with
  // the calls that name blocks. REQUIRES (take): free() >= n; !prefix_caching().
  void take(std::int64_t n);
  void give(std::int64_t n);
  // Appends `n` blocks to `table`, as n calls of allocate() would. REQUIRES: free() >= n.
  void allocate(std::int64_t n, std::vector<BlockId>& table);
  // Drops one reference; a block with none left returns to the free queue.
  void release(BlockId block);
  // Releases every block of `table`, last one first (so that its tail is evicted before its head).
  void release_all(const std::vector<BlockId>& table);
  // With prefix caching: caches the full block `block` under `key`, unless a block is cached under
  // it already.
  void cache(BlockId block, std::uint64_t key);
  // With prefix caching: caches each full block table[keys.visited()], up to table[full - 1], under
  // the key `keys` gives it, unless a block is cached under that key already; moves `keys` to
  // `full`. REQUIRES: full <= table.size().
  void cache(PrefixKeys& keys, const std::vector<BlockId>& table, std::int64_t full);
  // Sequences holding the block. REQUIRES: prefix_caching() (without, a held block has one holder).
  int refs(BlockId block) const { return blocks_[static_cast<std::size_t>(block)].refs; }
  // Blocks with a key (cached, held or free).
  std::int64_t cached() const { return by_key_.size(); }
  // Cached blocks whose key an allocation evicted.
  std::int64_t evictions() const { return evictions_; }

  // The host tier: its blocks (0: none), those holding a key, and the blocks stored to it, loaded
  // from it and evicted from it so far.
  std::int64_t host_total() const { return cap_.host_blocks; }
  std::int64_t host_cached() const { return host_by_key_.size(); }
  std::int64_t host_stores() const { return host_stores_; }
  std::int64_t host_loads() const { return host_loads_; }
  std::int64_t host_evictions() const { return host_evictions_; }
  // Whether copies wait for an executor, and takes them (appended to `out`, in order).
  bool has_transfers() const { return !transfers_.empty(); }
  void take_transfers(KvTransfers& out);

  // KV events (policies/kv_events.h): while on, each block cached and each cached block evicted is
  // recorded, for take_events(). Off by default (nothing is recorded).
  void record_events(bool on) { record_events_ = on; }
  bool records_events() const { return record_events_; }
  // Appends the events recorded since the last call to `out`, in order, and forgets them.
  void take_events(std::vector<KvEvent>& out) {
    out.insert(out.end(), events_.begin(), events_.end());
    events_.clear();
  }
  // Records that every cached block is gone (the device's memory was lost), when recording.
  void record_cleared() {
    if (record_events_) events_.push_back(KvEvent{0, KvEventKind::kCleared});
  }

 private:
  struct Block {
    std::uint64_t key = 0;
    std::int32_t refs = 0;
    std::uint32_t stamp = 0;  // of its latest entry in the free queue
    bool keyed = false;
  };
  // An entry of the free queue: `block` is in the queue at this place while it is free and
  // `stamp` is its latest (a block taken back from the queue leaves a stale entry behind, dropped
  // when it reaches the head or when stale entries outnumber the rest).
  struct Queued {
    BlockId block;
    std::uint32_t stamp;
  };
  Block& block(BlockId b) { return blocks_[static_cast<std::size_t>(b)]; }
  // The key of a keyed block (BlockKeyMap's key_of).
  auto key_of() const {
    return [this](BlockId b) { return blocks_[static_cast<std::size_t>(b)].key; };
  }
  void prefetch_block(BlockId b) const { __builtin_prefetch(&blocks_[static_cast<std::size_t>(b)]); }
  bool in_queue(const Queued& q) const {
    const Block& x = blocks_[static_cast<std::size_t>(q.block)];
    return x.refs == 0 && x.stamp == q.stamp;
  }
  // REQUIRES: block `b` was just freed (free_ counts it).
  void push_free_back(BlockId b);
  // The least recently freed block, out of the queue (still free: refs 0). REQUIRES: one is queued.
  BlockId pop_free_front();
  // Starts loading the next `n` queued blocks and the slots of their keys.
  void prefetch_victims(std::int64_t n) const;

  // The host tier's block under `key`, or -1.
  std::int32_t host_find(std::uint64_t key) const {
    return host_by_key_.find(key, [this](std::int32_t h) { return host_[static_cast<std::size_t>(h)].key; });
  }
  // Makes host block `h` the most recently used.
  void host_touch(std::int32_t h);
  // Touches the host copies of table[first..] (device blocks by their keys, -1 entries by the
  // host hits from host_hits[first_hit..], in order), the last first.
  void touch_host_copies(const std::vector<BlockId>& table, std::size_t first, const std::vector<HostHit>& host_hits,
                         std::size_t first_hit);
  void host_unlink(std::int32_t h);
  void host_link_last(std::int32_t h);
  // Stores device block `b`, just cached under `key`, to the host tier unless it has the key.
  void store_to_host(BlockId b, std::uint64_t key);

  KvCapacity cap_;
  std::int64_t free_ = 0;
  // With prefix caching: every block used so far (blocks [blocks_.size(), total) were never used),
  // and the free ones in a queue (taken from the head, freed to the tail), an array so that the
  // next victims' addresses are known without following links.
  std::vector<Block> blocks_;
  std::vector<Queued> queue_;
  std::size_t queue_head_ = 0;
  // Without: the freed blocks as a stack, and the first never used.
  std::vector<BlockId> stack_;
  std::int64_t fresh_ = 0;
  BlockKeyMap by_key_;
  std::int64_t evictions_ = 0;
  bool record_events_ = false;
  std::vector<KvEvent> events_;
  // The host tier: its blocks used so far (by key in host_by_key_) in a list from the least
  // recently used (host_lru_) to the most (host_mru_), and the copies not yet taken.
  struct HostBlock {
    std::uint64_t key = 0;
    std::int32_t prev = -1;
    std::int32_t next = -1;
  };
  std::vector<HostBlock> host_;
  std::int32_t host_lru_ = -1;
  std::int32_t host_mru_ = -1;
  BlockKeyMap host_by_key_;
  std::int64_t host_stores_ = 0;
  std::int64_t host_loads_ = 0;
  std::int64_t host_evictions_ = 0;
  KvTransfers transfers_;
};

// The blocks of a request's prompt a prefix cache may hand it: whole blocks of `block_tokens`, at
// most its prefill target less one token (the step that reaches the target computes at least one
// token, whose output is the next token). Used by WorkerState and by PrefixReuse alike.
inline std::int64_t max_prefix_hit_blocks(std::int64_t prefill_target, int block_tokens) {
  return prefill_target > 0 ? (prefill_target - 1) / block_tokens : 0;
}

// The reuse an unbounded prefix cache on one worker finds when requests arrive one after another,
// each computed before the next starts: what `twinfer trace info` reports. Each request finds the
// longest run of its prompt's blocks seen before (KvBlocks' keys, max_prefix_hit_blocks' limit);
// then its prompt's full blocks are cached.
class PrefixReuse {
 public:
  // REQUIRES: block_tokens >= 1.
  explicit PrefixReuse(int block_tokens) : block_tokens_(block_tokens) {}
  // Tokens of `r`'s prompt found cached.
  std::int64_t add(const Request& r);

 private:
  int block_tokens_;
  BlockKeyMap seen_;                 // the keys seen, by their index in keys_
  std::vector<std::uint64_t> keys_;
};

}  // namespace twinfer
