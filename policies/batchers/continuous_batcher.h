// Iteration-level continuous batching (vLLM / Orca / Sarathi-style) over a paged KV cache.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "policies/batcher.h"
#include "policies/batchers/batcher_queue_order.h"
#include "core/cluster_config.h"
#include "core/params.h"
#include "policies/registry.h"
#include "policies/worker_state.h"

namespace twinfer {

struct ContinuousOptions {
  int max_num_seqs = 256;                       // sequences resident at once
  std::int64_t max_num_batched_tokens = 8192;   // tokens per iteration (prefill chunks + decodes)
  bool chunked_prefill = true;                  // false: a prompt is prefilled whole in one iteration
  int block_tokens = 16;                        // tokens per KV block
  double gpu_memory_utilization = 0.9;          // fraction of device memory for weights + KV cache
  std::int64_t kv_blocks = 0;                   // 0: derived from the instance (derive_kv_blocks)
  double watermark = 0.01;                      // fraction of blocks kept free when admitting
  QueueOrder order = QueueOrder::kFcfs;         // "fcfs" | "sjf" | "priority"
  int priority_levels = 0;                      // 0: priorities as given; else clamped
  bool prefix_caching = false;                  // full blocks stay cached for later prompts (KvBlocks)
  // With prefix caching, a second tier in host memory (KvBlocks): its size in blocks, or in GB of
  // host memory (blocks of kv_bytes_per_token * block_tokens bytes); at most one of them, 0: none.
  std::int64_t host_kv_blocks = 0;
  double host_cache_gb = 0;
};

// Fills `options` from params (keys as the field names) and checks ranges; calls params.done().
ContinuousOptions read_continuous_options(JsonParams& params);

// KV-cache bytes per token over all layers: model.kv_bytes_per_token, or when 0,
// 2 (K and V) * layers * kv_heads (or heads) * (hidden / heads) * bytes_per_param.
// Throws twinfer::Error naming the model when it has no layers/heads to derive it from.
double kv_bytes_per_token(const ModelSpec& model);

// KV blocks that fit on `instance`: (mem_gb * 1e9 * tp * gpu_memory_utilization - weights bytes) /
// (kv_bytes_per_token * block_tokens), rounded down. Throws twinfer::Error naming `where` and the
// instance when the weights leave no room for one block.
std::int64_t derive_kv_blocks(const InstanceSpec& instance, int block_tokens, double gpu_memory_utilization,
                              const std::string& where);

// Each next() builds one iteration within max_num_batched_tokens and max_num_seqs:
//  1. one decode token for every running sequence past prefill (in start order, or by priority);
//     when one needs a KV block and none is free, the latest-started (lowest-priority) running
//     sequences after it are preempted for recompute, or it itself when there are none;
//  2. prefill chunks for running sequences still in prefill (a chunk shrinks to the free blocks);
//  3. when nothing was preempted, waiting sequences in order while the budget, max_num_seqs and the
//     KV blocks (less a watermark) allow; the first one that does not fit stops admission.
// With prefix_caching, a waiting sequence starts with the cached prefix it finds
// (WorkerState::prefix_hit) and prefills the rest; preempting a sequence frees only the blocks no
// other sequence shares.
// A waiting request that needs more blocks than the whole cache (blocks_for(input + output)), or,
// without chunked prefill, a longer prompt than the token budget, is dropped with the reason.
// Without chunked prefill, the recompute of a preempted sequence that outgrew the budget is chunked.
// Orders other than fcfs rank admission (and, for priority, eviction: lowest class first); a
// running sequence is never evicted to admit a waiting one. A plan with no entries may still carry
// drops or preemptions; it then asks to be called again at once (wake_at_us = now_us).
// REQUIRES: every plan next() returns (drops and preemptions included) is passed to state.begin()
// before the next call; state was created with kv_capacity().
class ContinuousBatcher : public Batcher {
 public:
  // REQUIRES: options.kv_blocks > 0 (see make_continuous_batcher for the derived size).
  explicit ContinuousBatcher(ContinuousOptions options, const CostModel* cost = nullptr,
                             const InstanceSpec* instance = nullptr);
  BatchPlan next(const WorkerState& state, TimeUs now_us) override;
  KvCapacity kv_capacity() const override {
    return {options_.kv_blocks, options_.block_tokens, options_.prefix_caching, options_.host_kv_blocks};
  }
  std::string name() const override { return "continuous"; }
  // With nothing waiting, every running sequence decoding and the cache holding their new blocks,
  // next() decodes them all (for fcfs and sjf: in running order; priority reorders them): steps to
  // the first completion, fewer when the blocks run out first.
  std::int64_t steady_decode_steps(const WorkerState& state) const override;

 private:
  struct Item {
    std::int64_t rank;
    std::int64_t ordinal;
    RequestId id;
    bool operator<(const Item& o) const { return rank != o.rank ? rank < o.rank : ordinal < o.ordinal; }
  };
  // Per-call working state.
  struct Step {
    const WorkerState* state = nullptr;
    std::int64_t budget = 0;        // tokens left in this iteration
    std::int64_t free_blocks = 0;   // blocks left after what is planned so far
    std::int64_t resident_seqs = 0;
    std::size_t victim_end = 0;     // victims are taken from order_[victim_end - 1] downward
  };
  enum class Admit { kAdmitted, kDropped, kStop };

  void plan_running(const WorkerState& state, BatchPlan& plan, Step& step);
  void schedule_decode(std::size_t k, BatchPlan& plan, Step& step);
  void schedule_prefill(std::size_t k, BatchPlan& plan, Step& step);
  // Preempts the last not yet preempted sequence after position k of order_ (skipping scheduled
  // ones when asked); false when there is none.
  bool preempt_victim(std::size_t k, bool skip_scheduled, BatchPlan& plan, Step& step);
  void preempt_at(std::size_t pos, BatchPlan& plan, Step& step);
  void admit_waiting(const WorkerState& state, BatchPlan& plan, Step& step);
  Admit try_admit(const Sequence& seq, BatchPlan& plan, Step& step) const;
  bool may_chunk(const Sequence& seq) const;
  // Why `seq` can never run here, or empty.
  std::string never_fits(const Sequence& seq, const KvBlocks& kv) const;
  void sync_index(const WorkerState& state);
  void add_to_index(const Request& request, std::int64_t ordinal);

  ContinuousOptions options_;
  QueueRanker ranker_;
  // Ordered index of the waiting queue for sjf/priority; fcfs reads state.waiting() directly.
  std::set<Item> ranked_;
  std::unordered_map<RequestId, Item> index_;
  std::int64_t back_ordinal_ = 0;
  std::int64_t front_ordinal_ = 0;
  // Scratch for one call: running sequences, the order they are served in, their flags.
  std::vector<const Sequence*> running_;
  std::vector<std::size_t> order_;
  std::vector<char> scheduled_;
  std::vector<char> preempted_;
};

// Derives kv_blocks from ctx.instance when the options leave it 0; throws twinfer::Error naming
// params.where() when there is neither kv_blocks nor an instance.
std::unique_ptr<Batcher> make_continuous_batcher(JsonParams& params, const PolicyContext& ctx);

}  // namespace twinfer
