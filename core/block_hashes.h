// What a request's prompt holds, as a trace tells it without the tokens: one hash id per block of
// `block_tokens` prompt tokens (Mooncake's `hash_ids`, 512-token blocks). Two requests whose first k
// ids are equal share their first k blocks' tokens. Eight bytes on a Request, shared by reference
// count (copies are safe across threads; the ids never change).
//
// A prompt given as its token ids (from_tokens) keeps them too, for the engines that run them; its
// ids are then computed from them: one per full block, chaining the previous block's id with the
// block's tokens (vLLM's block hashes), so equal ids mean equal tokens up to that block's end.
//
// The prefix keys below turn a request's ids into one key per block of an engine's KV cache (of any
// size): the key of engine block j names the whole prompt up to that block's end, so equal keys mean
// equal prefixes. Keys of blocks the ids do not cover (the rest of the prompt, generated tokens, a
// request without ids) are private to the request: only its own recompute can find them again.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace twinfer {

class BlockHashes {
 public:
  BlockHashes() noexcept = default;
  // REQUIRES: block_tokens >= 1. No ids: empty.
  BlockHashes(int block_tokens, std::vector<std::uint64_t> ids) {
    if (ids.empty()) return;
    const std::size_t n = ids.size();
    rep_ = new Rep{{1}, block_tokens, n, false, 0, std::make_shared<const std::vector<std::uint64_t>>(std::move(ids))};
  }
  // The first `count` ids of `base`, then `last` when `has_last`: requests of one conversation
  // share the ids of its history. REQUIRES: block_tokens >= 1, count <= base->size() (base may
  // grow after, never change what is there).
  BlockHashes(int block_tokens, std::shared_ptr<const std::vector<std::uint64_t>> base, std::size_t count,
              bool has_last, std::uint64_t last)
      : rep_(count == 0 && !has_last ? nullptr : new Rep{{1}, block_tokens, count, has_last, last, std::move(base)}) {}
  // A prompt given as token ids, hashed in blocks of `block_tokens` (a partial last block has no
  // id). REQUIRES: block_tokens >= 1. No tokens: empty.
  static BlockHashes from_tokens(std::vector<std::int32_t> tokens, int block_tokens);
  BlockHashes(const BlockHashes& other) noexcept : rep_(other.rep_) {
    if (rep_) rep_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  BlockHashes(BlockHashes&& other) noexcept : rep_(std::exchange(other.rep_, nullptr)) {}
  BlockHashes& operator=(BlockHashes other) noexcept {
    std::swap(rep_, other.rep_);
    return *this;
  }
  ~BlockHashes() {
    if (rep_ && rep_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete rep_;
  }

  // No ids and no tokens. (A prompt of tokens shorter than one block has tokens and no ids.)
  bool empty() const noexcept { return rep_ == nullptr; }
  std::size_t size() const noexcept { return rep_ ? rep_->count + (rep_->has_last ? 1 : 0) : 0; }
  // Tokens per id; 0 when empty.
  int block_tokens() const noexcept { return rep_ ? rep_->block_tokens : 0; }
  // REQUIRES: i < size().
  std::uint64_t operator[](std::size_t i) const noexcept { return i < rep_->count ? (*rep_->base)[i] : rep_->last; }
  // Whether both read their ids from one array (requests of one conversation; see the readers'
  // HashIdSharing).
  bool shares_ids_with(const BlockHashes& other) const noexcept {
    return rep_ != nullptr && other.rep_ != nullptr && rep_->base == other.rep_->base;
  }
  // Whether the prompt's token ids are known (from_tokens).
  bool has_tokens() const noexcept { return rep_ != nullptr && rep_->tokens != nullptr; }
  // REQUIRES: has_tokens().
  const std::vector<std::int32_t>& tokens() const noexcept { return *rep_->tokens; }
  std::vector<std::uint64_t> ids() const {
    std::vector<std::uint64_t> out(size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = (*this)[i];
    return out;
  }

  friend bool operator==(const BlockHashes& a, const BlockHashes& b) noexcept {
    if (a.rep_ == b.rep_) return true;
    if (a.block_tokens() != b.block_tokens() || a.size() != b.size() || a.has_tokens() != b.has_tokens()) return false;
    if (a.has_tokens() && a.tokens() != b.tokens()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }
  friend bool operator!=(const BlockHashes& a, const BlockHashes& b) noexcept { return !(a == b); }

 private:
  struct Rep {
    std::atomic<std::size_t> refs;
    int block_tokens;
    std::size_t count;
    bool has_last;
    std::uint64_t last;
    std::shared_ptr<const std::vector<std::uint64_t>> base;
    std::shared_ptr<const std::vector<std::int32_t>> tokens = nullptr;  // from_tokens only
  };
  Rep* rep_ = nullptr;
};

// A 64-bit mix of two values (splitmix64's finalizer over a combination): the chain step of keys.
inline std::uint64_t mix_hash(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t x = a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// The chain of a request's ids starts from this value: chain_k = mix_hash(chain_{k-1}, id_k).
inline constexpr std::uint64_t kPrefixChainSeed = 0x2545f4914f6cdd1dULL;

// Prompts given as token ids are hashed in blocks of this many tokens unless a request says
// otherwise (vLLM's default KV block size): an engine whose KV blocks hold a multiple of it can
// share every full block of a prompt.
inline constexpr int kTokenHashBlockTokens = 16;

// id_k = the tokens of block k folded one by one into id_{k-1} (the seed's mix for k = 0).
inline BlockHashes BlockHashes::from_tokens(std::vector<std::int32_t> tokens, int block_tokens) {
  if (tokens.empty()) return {};
  const std::size_t per_block = static_cast<std::size_t>(block_tokens);
  std::vector<std::uint64_t> ids(tokens.size() / per_block);
  std::uint64_t id = mix_hash(kPrefixChainSeed, 0x746f6b656e73ULL);
  for (std::size_t k = 0; k < ids.size(); ++k) {
    for (std::size_t i = k * per_block; i < (k + 1) * per_block; ++i) {
      id = mix_hash(id, static_cast<std::uint32_t>(tokens[i]));
    }
    ids[k] = id;
  }
  BlockHashes out;
  const std::size_t n = ids.size();
  out.rep_ = new Rep{{1}, block_tokens, n, false, 0, std::make_shared<const std::vector<std::uint64_t>>(std::move(ids)),
                     std::make_shared<const std::vector<std::int32_t>>(std::move(tokens))};
  return out;
}

// The keys of one request's blocks of `engine_block_tokens` tokens, in order, computed as asked.
// Block j ends at token t = (j + 1) * engine_block_tokens. While the request's ids cover the prompt
// to t (t <= input_tokens and the id of the trace block holding token t - 1 is known), the key is
// mix(chain of ids up to that trace block, t): shared by every request with the same ids so far.
// From the first block they do not cover on, keys chain from the previous one salted with the
// request id.
class PrefixKeys {
 public:
  PrefixKeys() = default;  // no blocks: call nothing but the assignment
  // REQUIRES: engine_block_tokens >= 1; `hashes` outlives this.
  PrefixKeys(const BlockHashes& hashes, std::int32_t input_tokens, std::uint64_t request_id, int engine_block_tokens)
      : hashes_(&hashes), input_tokens_(input_tokens), request_id_(request_id), block_tokens_(engine_block_tokens) {}

  // Key of the next block; blocks are visited in order from 0.
  std::uint64_t next() {
    const std::uint64_t key = peek();
    has_peeked_ = false;
    ++next_block_;
    return key;
  }
  // Key of the next block, without moving past it.
  std::uint64_t peek() {
    if (has_peeked_) return peeked_;
    has_peeked_ = true;
    const std::int64_t end = (next_block_ + 1) * std::int64_t{block_tokens_};
    if (!private_ && end <= input_tokens_ && !hashes_->empty()) {
      const std::int64_t trace_block = (end - 1) / hashes_->block_tokens();
      if (static_cast<std::size_t>(trace_block) < hashes_->size()) {
        while (chained_ <= trace_block) chain_ = mix_hash(chain_, (*hashes_)[static_cast<std::size_t>(chained_++)]);
        return peeked_ = last_ = mix_hash(chain_, static_cast<std::uint64_t>(end));
      }
    }
    if (!private_) {
      private_ = true;
      last_ = mix_hash(last_, request_id_ ^ 0x5bd1e9955bd1e995ULL);
    }
    return peeked_ = last_ = mix_hash(last_, static_cast<std::uint64_t>(next_block_));
  }
  // Blocks visited so far.
  std::int64_t visited() const { return next_block_; }
  // The same keys read from `hashes` (a copy of the ids it was made with, e.g. in a copied request).
  void rebind(const BlockHashes* hashes) { hashes_ = hashes; }
  // Whether the next block's key is shared (the ids cover it) rather than private to the request.
  bool next_is_shared() {
    peek();
    return !private_;
  }

 private:
  const BlockHashes* hashes_ = nullptr;
  std::int64_t input_tokens_ = 0;
  std::uint64_t request_id_ = 0;
  int block_tokens_ = 1;
  std::int64_t next_block_ = 0;
  std::int64_t chained_ = 0;           // trace ids folded into chain_
  std::uint64_t chain_ = kPrefixChainSeed;
  std::uint64_t last_ = kPrefixChainSeed;
  std::uint64_t peeked_ = 0;
  bool private_ = false;
  bool has_peeked_ = false;
};

}  // namespace twinfer
