// The queue, running set and KV cache of one worker, and the bookkeeping that carries out a
// batcher's plan. Shared by the simulator and the runtime so that both count tokens the same way.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "core/id_table.h"
#include "policies/admission.h"
#include "policies/batcher.h"
#include "policies/cost_model.h"
#include "policies/kv_blocks.h"
#include "core/request.h"
#include "core/time.h"

namespace twinfer {

// Tokens a request's prompt fills in the KV cache. A prompt of zero tokens still needs one computed
// token (the start token) to produce output, so that every sequence passes through exactly one
// prefill-completing step.
inline std::int32_t prompt_length(const Request& r) { return r.input_tokens > 0 ? r.input_tokens : 1; }

// A request resident on a worker.
//
// Token accounting: `computed` tokens have their KV in the cache. A sequence is in prefill while
// computed < prefill_target; the step whose chunk reaches prefill_target produces one output token.
// Each decode step then computes one more token (the last generated one) and produces the next.
// A preempted sequence keeps `generated`, drops its cache (computed = 0) and must prefill
// input_tokens + generated tokens again (recompute). It completes when generated reaches
// max(1, output_tokens). With prefix caching, a sequence that starts (or starts again) begins with
// computed = the tokens of the cached prefix it found.
struct Sequence {
  // The counters every step reads and writes first, next to the request's token counts.
  std::int32_t prefill_target = 0;
  std::int32_t computed = 0;
  std::int32_t generated = 0;
  int preemptions = 0;
  std::int32_t cached_tokens = -1;  // prompt tokens found in the prefix cache when it first started; -1: not started
  std::int32_t block_tokens = 0;    // KV block size of the worker where it first started (0: KV untracked)
  std::int32_t host_cached_tokens = 0;  // of cached_tokens, those loaded from the host tier (KvBlocks)
  std::int64_t held_blocks = 0;     // KV blocks it holds
  // Those blocks in token order (its block table), when the worker names blocks (see WorkerState).
  std::vector<KvBlocks::BlockId> blocks;
  Request request;
  TimeUs enqueued_us = 0;          // when it reached this worker
  TimeUs started_us = kNever;      // when it first entered a batch
  TimeUs first_token_us = kNever;  // when its first output token was produced

  bool in_prefill() const { return computed < prefill_target; }
  std::int32_t prefill_remaining() const { return prefill_target - computed; }
  std::int32_t output_target() const { return request.output_tokens > 1 ? request.output_tokens : 1; }
  bool done() const { return generated >= output_target(); }
  std::int64_t kv_blocks() const { return held_blocks; }
};

// Prefix-cache lookups of one worker, in tokens: every start of a sequence (a recompute included)
// asks for its prefill target and finds `hit_tokens` of it cached.
struct PrefixCacheStats {
  std::int64_t queried_tokens = 0;
  std::int64_t hit_tokens = 0;
  std::int64_t queries = 0;
  std::int64_t hits = 0;  // lookups that found at least one block
  std::int64_t host_hit_tokens = 0;  // of hit_tokens, those loaded from the host tier
};

// A sequence that left the worker, and how.
struct Finished {
  Sequence seq;
  Outcome outcome = Outcome::kCompleted;  // kCompleted, or kDropped with a reason
  std::string reason;
};

// Thread safety: none; one driver thread owns it.
class WorkerState {
 public:
  // `block_tables`: keep each sequence's block table (Sequence::blocks) for an executor that stores
  // keys and values by block (the runtime's backends). With prefix caching the tables are kept
  // anyway (sharing needs them); else the simulator counts blocks only, with the same decisions.
  explicit WorkerState(KvCapacity kv = {}, bool block_tables = false);

  // A routed request reaches the worker at `now_us`.
  void enqueue(const Request& request, TimeUs now_us);

  // Waiting sequences in arrival order (preempted ones go back to the front).
  const std::deque<RequestId>& waiting() const { return waiting_; }
  // Running sequences in the order they started.
  const std::vector<RequestId>& running() const { return running_; }
  // The i-th of running(). REQUIRES: i < running().size().
  const Sequence& running_sequence(std::size_t i) const { return running_slots()[i]->seq; }
  // REQUIRES: id is waiting or running here.
  const Sequence& get(RequestId id) const;
  // True when `id` is here and running.
  bool is_running(RequestId id) const;
  const KvBlocks& kv() const { return kv_; }
  // KV events (KvBlocks::record_events): off by default; a driver turns them on for a router that
  // reads them and takes them as they come.
  void record_kv_events(bool on) { kv_.record_events(on); }
  void take_kv_events(std::vector<KvEvent>& out) { kv_.take_events(out); }
  // With a host tier: the copies between device and host memory the steps so far asked for
  // (KvBlocks::take_transfers), appended to `out`; an executor carries them out before its step.
  bool has_kv_transfers() const { return kv_.has_transfers(); }
  void take_kv_transfers(KvTransfers& out) { kv_.take_transfers(out); }
  const PrefixCacheStats& prefix_stats() const { return prefix_stats_; }
  // Prompt tokens found in the prefix cache by the sequences the last begin() started (the
  // timeline's cached tokens of a step).
  std::int64_t started_cached_tokens() const { return started_cached_tokens_; }
  // With prefix caching, the cached prefix a waiting sequence that never ran or was preempted
  // would start with if it started now (at most its prefill target less one token, in whole
  // blocks); nothing otherwise. begin() starts it with exactly that prefix, so a batcher sizes the
  // first chunk from prefill_target - blocks * block_tokens, and takes blocks + the chunk's new
  // blocks less the hit's blocks that were free.
  PrefixHit prefix_hit(const Sequence& seq) const;
  // The blocks that preempting or finishing `seq` returns to the free queue (those no other
  // sequence holds).
  std::int64_t blocks_freed_by(const Sequence& seq) const;
  bool empty() const { return waiting_.empty() && running_.empty(); }

  // Removes a waiting or running sequence that must not run any more (its request timed out, or the
  // router that sent it is gone), freeing its KV blocks. Returns false when it is not here.
  // REQUIRES: no plan that includes it is between begin() and finish().
  bool cancel(RequestId id);

  // Takes a sequence that cannot run (its executor refused it) out of a plan that began: removes its
  // entry from `plan`, frees its KV blocks and returns it kDropped with `reason`. The rest of the
  // plan may then run and finish. REQUIRES: begin(plan) ran and plan has an entry for id.
  Finished fail_entry(BatchPlan& plan, RequestId id, std::string reason);

  // The worker failed in a step (an error no one sequence answers for): every running sequence
  // ends kDropped with `reason`, its KV blocks freed; waiting ones stay. In running order.
  std::vector<Finished> fail_running(const std::string& reason);

  // Removes every sequence (the worker crashed): returns them in queue order, waiting ones first.
  // The KV cache is all free again.
  std::vector<Sequence> clear();

  // Removes waiting sequences that `admission` drops before start; returns them (kDropped).
  std::vector<Finished> purge_waiting(const Admission& admission, TimeUs now_us);

  // Carries out the bookkeeping of `plan` before it runs: drops, then preemptions (back to the front
  // of the waiting queue, blocks freed), then entries (waiting ones start; KV blocks for the tokens
  // this step adds are taken). Dropped sequences are returned. REQUIRES: the plan fits the KV cache,
  // and plan_error(plan) is empty.
  std::vector<Finished> begin(const BatchPlan& plan, TimeUs now_us);
  // What begin() requires of a plan's ids, checked: "" when every entry is a sequence here (for
  // an iteration: one that prefills within what it has left, or decodes while decoding), every
  // preempted one runs and every dropped one waits; else what is wrong. For batchers that are not
  // trusted to keep begin()'s preconditions (those written in Python).
  std::string plan_error(const BatchPlan& plan) const;

  // The plan's effects once it ran, ending at `now_us`: token counts, first tokens, completions
  // (blocks freed). Returns the completed sequences. Request batches complete every entry.
  std::vector<Finished> finish(const BatchPlan& plan, TimeUs now_us);

  // Steady decoding, every running sequence decoding one token per step (Batcher::steady_decode_steps):
  // steps until the first of them completes (that step included); 0 when one is in prefill or
  // none runs.
  std::int64_t decode_steps_to_completion() const;
  // KV blocks the running sequences take over the next `steps` such steps.
  std::int64_t decode_blocks_needed(std::int64_t steps) const;
  // The running sequences' tokens in the cache (their contexts before the next step).
  std::int64_t running_context_tokens() const;
  // A plan that decodes every running sequence once, in running order.
  BatchPlan decode_all_plan() const;
  // Carries out `steps` such steps: the same as `steps` times begin() and finish() of
  // decode_all_plan() (a decode step sets no time on its sequences). Returns the sequences that completed, in running
  // order. REQUIRES: 1 <= steps <= decode_steps_to_completion(), and the blocks taken fit
  // (decode_blocks_needed(steps) <= kv().free()).
  std::vector<Finished> advance_decode(std::int64_t steps);

  // Shapes of a plan, for the cost model. REQUIRES: called after begin(plan) and before finish(plan).
  IterationShape iteration_shape(const BatchPlan& plan) const;
  RequestBatchShape request_batch_shape(const BatchPlan& plan) const;
  // Predicted duration of `plan` on `instance`. REQUIRES: !plan.idle().
  TimeUs plan_time_us(const BatchPlan& plan, const CostModel& cost, const InstanceSpec& instance) const;

 private:
  // A resident sequence plus where it sits. `queue_ordinal` grows toward the back of waiting_ and
  // shrinks toward its front, so waiting_ is sorted by it and a position is found by binary search.
  struct Slot {
    bool running = false;
    bool leaving = false;  // marked for removal from running_ by the current begin()/finish()
    Sequence seq;          // its counters and token counts within the slot's first 64 bytes
    std::int64_t queue_ordinal = 0;
    PrefixKeys keys;       // with prefix caching: the keys of its blocks, from its first uncached one

    // The keys read this slot's own request, also in a copy (of a copied WorkerState).
    Slot() = default;
    Slot(const Slot& o) : running(o.running), leaving(o.leaving), seq(o.seq), queue_ordinal(o.queue_ordinal), keys(o.keys) {
      keys.rebind(&seq.request.prefix);
    }
    Slot& operator=(const Slot& o) {
      running = o.running;
      leaving = o.leaving;
      seq = o.seq;
      queue_ordinal = o.queue_ordinal;
      keys = o.keys;
      keys.rebind(&seq.request.prefix);
      return *this;
    }
    Slot(Slot&& o) noexcept
        : running(o.running), leaving(o.leaving), seq(std::move(o.seq)), queue_ordinal(o.queue_ordinal), keys(o.keys) {
      keys.rebind(&seq.request.prefix);
    }
    Slot& operator=(Slot&& o) noexcept {
      running = o.running;
      leaving = o.leaving;
      seq = std::move(o.seq);
      queue_ordinal = o.queue_ordinal;
      keys = o.keys;
      keys.rebind(&seq.request.prefix);
      return *this;
    }
  };

  Slot& slot(RequestId id);
  const Slot& slot(RequestId id) const;
  void push_waiting_back(Slot& s);
  void push_waiting_front(Slot& s);
  // Removes the given waiting ids (each present once) from waiting_, keeping the order of the rest.
  void erase_waiting(std::vector<RequestId>& ids);
  // Removes the running sequences marked `leaving` from running_, keeping the order of the rest.
  void sweep_running();
  void release_blocks(Sequence& seq);
  void preempt(RequestId id);
  // A waiting sequence joins the running set: with prefix caching it takes its cached prefix.
  void start(Slot& s, TimeUs now_us);
  void start_entry(const BatchEntry& entry, BatchKind kind);
  // Takes blocks until `seq` holds `blocks`.
  void grow(Sequence& seq, std::int64_t blocks);
  // With prefix caching: takes the blocks `steps` decode steps of every running sequence need, in
  // the order the steps one at a time would take them.
  void allocate_decode_blocks(std::int64_t steps);
  // With prefix caching: caches the blocks `s` filled since the last call.
  void cache_full_blocks(Slot& s);
  Finished take_out(RequestId id, Outcome outcome, std::string reason);

  // The running sequences' slots in running_ order, so that loops over the running set skip the id
  // lookups (IdTable keeps its values' addresses). A copied WorkerState starts without them and
  // rebuilds them on first use (running_slots()).
  struct SlotPointers {
    std::vector<Slot*> slots;
    SlotPointers() = default;
    SlotPointers(const SlotPointers&) {}
    SlotPointers& operator=(const SlotPointers&) {
      slots.clear();
      return *this;
    }
    SlotPointers(SlotPointers&&) = default;
    SlotPointers& operator=(SlotPointers&&) = default;
  };
  const std::vector<Slot*>& running_slots() const;

  KvBlocks kv_;
  bool tables_ = false;  // sequences' blocks are named (Sequence::blocks)
  PrefixCacheStats prefix_stats_;
  std::int64_t started_cached_tokens_ = 0;
  IdTable<Slot> slots_;
  mutable SlotPointers running_slots_;
  std::deque<RequestId> waiting_;
  std::vector<RequestId> running_;
  std::int64_t front_ordinal_ = 0;  // ordinal of waiting_.front() once pushed to the front
  std::int64_t back_ordinal_ = 0;
  // Reused by begin() and erase_waiting() to avoid allocations per step.
  std::vector<RequestId> scratch_ids_;
  // The prefix blocks the sequences begin() started found in the host tier only, and where each
  // goes: (its sequence's slot, its place in the block table). Loaded once every start took its
  // device blocks.
  std::vector<HostHit> host_hits_;
  std::vector<std::pair<Slot*, std::size_t>> host_hit_places_;
  std::vector<std::size_t> scratch_positions_;
};

}  // namespace twinfer
