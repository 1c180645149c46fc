// Batcher: what a worker runs next.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/request.h"
#include "core/time.h"

namespace twinfer {

class WorkerState;

enum class BatchKind {
  kIteration,     // one continuous-batching iteration: prefill chunks + one decode token each
  kRequestBatch,  // a request-level batch that runs every entry to completion
};

struct BatchEntry {
  RequestId id = 0;
  std::int32_t prefill_tokens = 0;  // prompt tokens computed this step (a chunk, or all of it)
  bool decode = false;              // produces one output token from the cache (iterations only)
};

struct BatchDrop {
  RequestId id = 0;
  std::string reason;
};

// A batcher's decision. Carried out by WorkerState::begin()/finish(), never by the batcher.
struct BatchPlan {
  BatchKind kind = BatchKind::kIteration;
  std::vector<BatchEntry> entries;   // empty: nothing to run now
  std::vector<RequestId> preempt;    // running sequences evicted first (recomputed later)
  std::vector<BatchDrop> drop;       // waiting sequences that can never run on this worker
  std::int64_t padded_input_tokens = 0;  // request batches that pad: size * longest input; else 0
  TimeUs wake_at_us = kNever;        // with no entries: ask again at this time (and on arrivals)

  bool idle() const { return entries.empty(); }
};

// KV-cache capacity a batcher manages. blocks_total == 0: this batcher does not track KV memory.
struct KvCapacity {
  std::int64_t blocks_total = 0;
  int block_tokens = 16;
  bool prefix_caching = false;  // full blocks stay cached for later requests (see KvBlocks)
  std::int64_t host_blocks = 0;  // with prefix caching: blocks of the second tier in host memory (0: none)
};

// One batcher per worker. Thread safety: next() is called from that worker's thread only.
class Batcher {
 public:
  virtual ~Batcher() = default;
  // The next step for this worker. Called when the worker is idle and something changed
  // (arrival, completion, or wake_at_us reached).
  virtual BatchPlan next(const WorkerState& state, TimeUs now_us) = 0;
  // The KV cache the worker's state must be created with.
  virtual KvCapacity kv_capacity() const { return {}; }
  virtual std::string name() const = 0;
  // How many next() calls from now, while no request reaches the worker and each plan is carried
  // out (begin(), then finish()) before the next call, certainly return a plan that decodes every
  // running sequence once, in running order, and nothing else: up to and including the step in
  // which the first of them completes. 0 when the batcher cannot tell (the default). The simulator
  // carries such steps out without asking (WorkerState::advance_decode), to the same effect.
  virtual std::int64_t steady_decode_steps(const WorkerState& state) const {
    (void)state;
    return 0;
  }
};

}  // namespace twinfer
