// What a router knows of where prompt prefixes live without asking the workers: the prompt blocks
// it sent to each worker (SGLang's approximate radix tree, llm-d's approximate prefix scorer), each
// worker's kept to a capacity with the least recently sent evicted first.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "core/request.h"

namespace twinfer {

// Blocks are `block_tokens` prompt tokens keyed as the workers' caches key them (PrefixKeys), so a
// block the index says a worker holds is one its prefix cache may still hold; only blocks that the
// request's hash ids cover are recorded (the others are private to the request). Thread safety:
// none (a router's).
class PrefixIndex {
 public:
  // REQUIRES: block_tokens >= 1.
  explicit PrefixIndex(int block_tokens) : block_tokens_(block_tokens) {}

  int block_tokens() const { return block_tokens_; }
  // Sets matched[w], for w in [0, workers), to the number of `request`'s leading blocks recorded
  // for worker w; returns the request's full prompt blocks.
  std::int64_t match(const Request& request, std::size_t workers, std::vector<std::int64_t>& matched) const;
  // Records `request`'s shared prompt blocks as held by `worker` (the most recently sent), then
  // evicts its least recently sent blocks beyond `capacity` blocks (<= 0: no limit).
  void record(const Request& request, int worker, std::int64_t capacity);
  // Blocks recorded for `worker`.
  std::int64_t blocks(int worker) const;
  // Stamp of the last block recorded (0: none yet); stamps grow with every block recorded.
  std::uint64_t stamp() const { return clock_; }
  // Forgets, for every worker, the blocks last recorded at or before `stamp` (those recorded again
  // since stay).
  void forget_through(std::uint64_t stamp);

 private:
  struct Holder {
    int worker;
    std::uint64_t stamp;  // when it was last recorded for the worker
  };
  struct Log {
    std::deque<std::pair<std::uint64_t, std::uint64_t>> entries;  // (key, stamp), oldest first
    std::int64_t live = 0;
  };
  Log& log_of(int worker);
  void evict_oldest(int worker);
  // Pops `worker`'s oldest log entry (REQUIRES: one); whether it was live (and is now forgotten).
  bool pop_oldest(int worker);

  int block_tokens_;
  std::uint64_t clock_ = 0;
  std::unordered_map<std::uint64_t, std::vector<Holder>> holders_;
  std::vector<Log> logs_;
};

}  // namespace twinfer
