#include "policies/worker_state.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace twinfer {

WorkerState::WorkerState(KvCapacity kv, bool block_tables)
    : kv_(kv), tables_(kv.blocks_total > 0 && (block_tables || kv.prefix_caching)) {}

WorkerState::Slot& WorkerState::slot(RequestId id) {
  Slot* s = slots_.find(id);
  assert(s != nullptr && "unknown request id");
  return *s;
}

const WorkerState::Slot& WorkerState::slot(RequestId id) const {
  const Slot* s = slots_.find(id);
  assert(s != nullptr && "unknown request id");
  return *s;
}

const Sequence& WorkerState::get(RequestId id) const { return slot(id).seq; }

bool WorkerState::is_running(RequestId id) const {
  const Slot* s = slots_.find(id);
  return s != nullptr && s->running;
}

void WorkerState::enqueue(const Request& request, TimeUs now_us) {
  Slot& s = slots_.emplace(request.id);
  s.seq.request = request;
  s.seq.enqueued_us = now_us;
  s.seq.prefill_target = prompt_length(request);
  push_waiting_back(s);
}

void WorkerState::push_waiting_back(Slot& s) {
  s.queue_ordinal = ++back_ordinal_;
  waiting_.push_back(s.seq.request.id);
}

void WorkerState::push_waiting_front(Slot& s) {
  s.queue_ordinal = --front_ordinal_;
  waiting_.push_front(s.seq.request.id);
}

void WorkerState::erase_waiting(std::vector<RequestId>& ids) {
  if (ids.empty()) return;
  // Positions by binary search on the ordinals; then one pass over the smallest suffix needed.
  std::vector<std::size_t>& positions = scratch_positions_;
  positions.clear();
  for (RequestId id : ids) {
    const std::int64_t ordinal = slot(id).queue_ordinal;
    auto it = std::lower_bound(waiting_.begin(), waiting_.end(), ordinal,
                               [this](RequestId a, std::int64_t o) { return slot(a).queue_ordinal < o; });
    assert(it != waiting_.end() && *it == id && "request is not waiting");
    positions.push_back(static_cast<std::size_t>(it - waiting_.begin()));
  }
  std::sort(positions.begin(), positions.end());
  const std::size_t k = positions.size();
  if (positions.back() == k - 1) {
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(k));
    return;
  }
  if (positions.front() == waiting_.size() - k) {
    waiting_.erase(waiting_.end() - static_cast<std::ptrdiff_t>(k), waiting_.end());
    return;
  }
  // Close the gaps toward whichever end moves fewer elements.
  const std::size_t first = positions.front();
  const std::size_t last = positions.back();
  if (last + 1 < waiting_.size() - first) {
    std::size_t out = last + 1;
    std::size_t next_removed = k;
    for (std::size_t in = last + 1; in-- > 0;) {
      if (next_removed > 0 && positions[next_removed - 1] == in) {
        --next_removed;
        continue;
      }
      waiting_[--out] = waiting_[in];
    }
    waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(k));
    return;
  }
  std::size_t out = first;
  std::size_t next_removed = 0;
  for (std::size_t in = first; in < waiting_.size(); ++in) {
    if (next_removed < k && positions[next_removed] == in) {
      ++next_removed;
      continue;
    }
    waiting_[out++] = waiting_[in];
  }
  waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(out), waiting_.end());
}

const std::vector<WorkerState::Slot*>& WorkerState::running_slots() const {
  std::vector<Slot*>& slots = running_slots_.slots;
  if (slots.size() != running_.size()) {
    slots.clear();
    for (RequestId id : running_) slots.push_back(const_cast<Slot*>(&slot(id)));
  }
  return slots;
}

void WorkerState::sweep_running() {
  const std::vector<Slot*>& slots = running_slots();
  std::size_t kept = 0;
  for (std::size_t i = 0; i < running_.size(); ++i) {
    if (slots[i]->leaving) continue;
    running_[kept] = running_[i];
    running_slots_.slots[kept] = slots[i];
    ++kept;
  }
  running_.resize(kept);
  running_slots_.slots.resize(kept);
}

void WorkerState::release_blocks(Sequence& seq) {
  if (tables_) {
    kv_.release_all(seq.blocks);
    seq.blocks.clear();
  } else if (kv_.tracked()) {
    kv_.give(seq.held_blocks);
  }
  seq.held_blocks = 0;
}

void WorkerState::grow(Sequence& seq, std::int64_t blocks) {
  if (!kv_.tracked() || seq.held_blocks >= blocks) return;
  if (tables_) {
    kv_.allocate(blocks - seq.held_blocks, seq.blocks);
  } else {
    kv_.take(blocks - seq.held_blocks);
  }
  seq.held_blocks = blocks;
}

void WorkerState::cache_full_blocks(Slot& s) {
  kv_.cache(s.keys, s.seq.blocks, s.seq.computed / kv_.block_tokens());
}

PrefixHit WorkerState::prefix_hit(const Sequence& seq) const {
  if (!kv_.prefix_caching() || seq.computed > 0 || is_running(seq.request.id)) return {};
  const Request& r = seq.request;
  return kv_.lookup(PrefixKeys(r.prefix, r.input_tokens, r.id, kv_.block_tokens()),
                    max_prefix_hit_blocks(seq.prefill_target, kv_.block_tokens()));
}

std::int64_t WorkerState::blocks_freed_by(const Sequence& seq) const {
  if (!kv_.prefix_caching()) return seq.kv_blocks();
  std::int64_t n = 0;
  for (KvBlocks::BlockId b : seq.blocks) n += kv_.refs(b) == 1 ? 1 : 0;
  return n;
}

Finished WorkerState::take_out(RequestId id, Outcome outcome, std::string reason) {
  Slot& s = slot(id);
  Finished f{std::move(s.seq), outcome, std::move(reason)};
  slots_.erase(id);
  return f;
}

bool WorkerState::cancel(RequestId id) {
  Slot* found = slots_.find(id);
  if (found == nullptr) return false;
  Slot& s = *found;
  release_blocks(s.seq);
  if (s.running) {
    s.leaving = true;
    sweep_running();
  } else {
    scratch_ids_.assign(1, id);
    erase_waiting(scratch_ids_);
    scratch_ids_.clear();
  }
  slots_.erase(id);
  return true;
}

Finished WorkerState::fail_entry(BatchPlan& plan, RequestId id, std::string reason) {
  auto entry = std::find_if(plan.entries.begin(), plan.entries.end(), [id](const BatchEntry& e) { return e.id == id; });
  assert(entry != plan.entries.end());
  plan.entries.erase(entry);
  Slot& s = slot(id);
  release_blocks(s.seq);
  if (s.running) {
    s.leaving = true;
    sweep_running();
  }
  return take_out(id, Outcome::kDropped, std::move(reason));
}

std::vector<Finished> WorkerState::fail_running(const std::string& reason) {
  std::vector<Finished> out;
  out.reserve(running_.size());
  const std::vector<RequestId> running = running_;
  for (RequestId id : running) {
    Slot& s = slot(id);
    release_blocks(s.seq);
    s.leaving = true;
  }
  sweep_running();
  for (RequestId id : running) out.push_back(take_out(id, Outcome::kDropped, reason));
  return out;
}

std::vector<Sequence> WorkerState::clear() {
  std::vector<Sequence> out;
  out.reserve(slots_.size());
  for (RequestId id : waiting_) out.push_back(std::move(slot(id).seq));
  for (RequestId id : running_) out.push_back(std::move(slot(id).seq));
  for (Sequence& seq : out) {
    seq.blocks.clear();
    seq.held_blocks = 0;
  }
  // The device's memory, cached prefixes included, is gone (the events not taken yet with it: a
  // reader forgets the worker's cache at the kCleared event anyway).
  const bool recording = kv_.records_events();
  kv_ = KvBlocks(kv_.capacity());
  kv_.record_events(recording);
  kv_.record_cleared();
  slots_.clear();
  waiting_.clear();
  running_.clear();
  running_slots_.slots.clear();
  return out;
}

std::vector<Finished> WorkerState::purge_waiting(const Admission& admission, TimeUs now_us) {
  std::vector<Finished> out;
  if (!admission.may_drop_before_start()) return out;
  std::vector<RequestId> ids;
  std::vector<std::string> reasons;
  for (RequestId id : waiting_) {
    auto reason = admission.drop_before_start(slot(id).seq.request, now_us);
    if (!reason) continue;
    ids.push_back(id);
    reasons.push_back(std::move(*reason));
  }
  erase_waiting(ids);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    out.push_back(take_out(ids[i], Outcome::kDropped, std::move(reasons[i])));
  }
  return out;
}

void WorkerState::preempt(RequestId id) {
  Slot& s = slot(id);
  assert(s.running && "preempting a sequence that is not running");
  Sequence& seq = s.seq;
  release_blocks(seq);
  seq.computed = 0;
  seq.prefill_target = prompt_length(seq.request) + seq.generated;
  ++seq.preemptions;
  s.running = false;
  s.leaving = true;
}

void WorkerState::start(Slot& s, TimeUs now_us) {
  Sequence& seq = s.seq;
  s.running = true;
  if (running_slots_.slots.size() == running_.size()) running_slots_.slots.push_back(&s);
  running_.push_back(seq.request.id);
  scratch_ids_.push_back(seq.request.id);
  if (seq.started_us == kNever) seq.started_us = now_us;
  // One allocation for its whole life (its table grows to its prompt and output at most).
  if (tables_) {
    seq.blocks.reserve(static_cast<std::size_t>(
        kv_.blocks_for(std::int64_t{prompt_length(seq.request)} + seq.output_target())));
  }
  if (seq.cached_tokens < 0 && kv_.tracked()) seq.block_tokens = kv_.block_tokens();
  if (!kv_.prefix_caching()) {
    if (seq.cached_tokens < 0) seq.cached_tokens = 0;
    return;
  }
  const Request& r = seq.request;
  s.keys = PrefixKeys(r.prefix, r.input_tokens, r.id, kv_.block_tokens());
  const std::int64_t most = max_prefix_hit_blocks(seq.prefill_target, kv_.block_tokens());
  if (kv_.host_total() == 0) {
    kv_.take_cached(s.keys, most, seq.blocks);
  } else {
    const std::size_t first = seq.blocks.size();
    const std::size_t hits = host_hits_.size();
    kv_.take_cached(s.keys, most, seq.blocks, host_hits_);
    for (std::size_t i = first; i < seq.blocks.size(); ++i) {
      if (seq.blocks[i] < 0) host_hit_places_.emplace_back(&s, i);  // in the order of host_hits_
    }
    const auto host_tokens = static_cast<std::int64_t>(host_hits_.size() - hits) * kv_.block_tokens();
    prefix_stats_.host_hit_tokens += host_tokens;
    if (seq.cached_tokens < 0) seq.host_cached_tokens = static_cast<std::int32_t>(host_tokens);
  }
  seq.held_blocks = static_cast<std::int64_t>(seq.blocks.size());
  seq.computed = static_cast<std::int32_t>(seq.kv_blocks() * kv_.block_tokens());
  if (seq.cached_tokens < 0) seq.cached_tokens = seq.computed;
  ++prefix_stats_.queries;
  prefix_stats_.hits += seq.computed > 0 ? 1 : 0;
  prefix_stats_.queried_tokens += seq.prefill_target;
  prefix_stats_.hit_tokens += seq.computed;
  started_cached_tokens_ += seq.computed;
}

void WorkerState::start_entry(const BatchEntry& entry, BatchKind kind) {
  Sequence& seq = slot(entry.id).seq;
  std::int64_t blocks_needed = 0;
  if (kind == BatchKind::kRequestBatch) {
    blocks_needed = kv_.blocks_for(std::int64_t{seq.prefill_target} + seq.output_target());
  } else {
    assert(!(entry.prefill_tokens > 0 && entry.decode) && "an entry either prefills or decodes");
    assert((entry.decode || entry.prefill_tokens <= seq.prefill_remaining()) && "chunk past the prefill target");
    assert((!entry.decode || (!seq.in_prefill() && !seq.done())) && "decode of a sequence not decoding");
    blocks_needed = kv_.blocks_for(std::int64_t{seq.computed} + entry.prefill_tokens + (entry.decode ? 1 : 0));
  }
  assert(blocks_needed - seq.kv_blocks() <= kv_.free() || !kv_.tracked());
  grow(seq, blocks_needed);
}

std::string WorkerState::plan_error(const BatchPlan& plan) const {
  const auto find = [this](RequestId id) -> const Slot* { return slots_.find(id); };
  for (const BatchEntry& e : plan.entries) {
    const Slot* s = find(e.id);
    const std::string entry = "batch entry " + std::to_string(e.id);
    if (s == nullptr) return entry + " is not on this worker";
    if (plan.kind != BatchKind::kIteration) continue;
    const Sequence& seq = s->seq;
    const std::int64_t cached = s->running ? 0 : prefix_hit(seq).blocks * kv_.block_tokens();
    if (e.prefill_tokens < 0) return entry + ": negative prefill_tokens";
    if (e.prefill_tokens > 0 && e.decode) return entry + ": an entry either prefills or decodes";
    if (!e.decode && e.prefill_tokens == 0) return entry + ": neither prefills nor decodes";
    if (!e.decode && e.prefill_tokens > seq.prefill_remaining() - cached) {
      return entry + ": prefill_tokens " + std::to_string(e.prefill_tokens) + " past the " +
             std::to_string(seq.prefill_remaining() - cached) + " left to prefill" +
             (cached > 0 ? " (" + std::to_string(cached) + " tokens are in the prefix cache)" : "");
    }
    if (e.decode && (seq.in_prefill() || seq.done())) return entry + ": decode of a sequence that is not decoding";
  }
  for (RequestId id : plan.preempt) {
    const Slot* s = find(id);
    if (s == nullptr || !s->running) return "preempted request " + std::to_string(id) + " is not running";
  }
  for (const BatchDrop& d : plan.drop) {
    const Slot* s = find(d.id);
    if (s == nullptr || s->running) return "dropped request " + std::to_string(d.id) + " is not waiting";
  }
  return {};
}

std::vector<Finished> WorkerState::begin(const BatchPlan& plan, TimeUs now_us) {
  std::vector<Finished> dropped;
  if (!plan.drop.empty()) {
    scratch_ids_.clear();
    for (const BatchDrop& d : plan.drop) {
      assert(!slot(d.id).running && "only waiting sequences are dropped");
      scratch_ids_.push_back(d.id);
    }
    erase_waiting(scratch_ids_);
    for (const BatchDrop& d : plan.drop) dropped.push_back(take_out(d.id, Outcome::kDropped, d.reason));
  }
  if (!plan.preempt.empty()) {
    for (RequestId id : plan.preempt) preempt(id);
    sweep_running();
    for (RequestId id : plan.preempt) {
      Slot& s = slot(id);
      s.leaving = false;
      push_waiting_front(s);
    }
  }
  // Every starting sequence takes its cached prefix before any block is allocated, so that no
  // allocation of this plan evicts a prefix another entry of it was planned with.
  scratch_ids_.clear();
  started_cached_tokens_ = 0;
  for (const BatchEntry& e : plan.entries) {
    Slot& s = slot(e.id);
    if (!s.running) start(s, now_us);
  }
  // Then the blocks found in the host tier take their device blocks and loads.
  for (std::size_t i = 0; i < host_hits_.size(); ++i) {
    auto [s, place] = host_hit_places_[i];
    s->seq.blocks[place] = kv_.load(host_hits_[i]);
  }
  host_hits_.clear();
  host_hit_places_.clear();
  for (const BatchEntry& e : plan.entries) start_entry(e, plan.kind);
  erase_waiting(scratch_ids_);
  return dropped;
}

std::vector<Finished> WorkerState::finish(const BatchPlan& plan, TimeUs now_us) {
  bool any_done = false;
  for (const BatchEntry& e : plan.entries) {
    Slot& s = slot(e.id);
    assert(s.running && "finishing an entry that did not begin");
    Sequence& seq = s.seq;
    if (plan.kind == BatchKind::kRequestBatch) {
      seq.computed = seq.prefill_target;
      seq.generated = seq.output_target();
      seq.first_token_us = now_us;
    } else if (e.decode) {
      ++seq.computed;
      ++seq.generated;
    } else {
      seq.computed += e.prefill_tokens;
      if (!seq.in_prefill() && e.prefill_tokens > 0) {
        ++seq.generated;
        if (seq.first_token_us == kNever) seq.first_token_us = now_us;
      }
    }
    if (kv_.prefix_caching()) cache_full_blocks(s);
    if (seq.done()) s.leaving = any_done = true;
  }
  std::vector<Finished> completed;
  if (!any_done) return completed;
  sweep_running();
  for (const BatchEntry& e : plan.entries) {
    Slot& s = slot(e.id);
    if (!s.leaving) continue;
    release_blocks(s.seq);
    completed.push_back(take_out(e.id, Outcome::kCompleted, {}));
  }
  return completed;
}

std::int64_t WorkerState::decode_steps_to_completion() const {
  if (running_.empty()) return 0;
  std::int64_t steps = INT64_MAX;
  for (const Slot* s : running_slots()) {
    const Sequence& seq = s->seq;
    if (seq.in_prefill() || seq.done()) return 0;
    steps = std::min<std::int64_t>(steps, seq.output_target() - seq.generated);
  }
  return steps;
}

std::int64_t WorkerState::decode_blocks_needed(std::int64_t steps) const {
  std::int64_t blocks = 0;
  for (const Slot* s : running_slots()) {
    blocks += std::max<std::int64_t>(0, kv_.blocks_for(s->seq.computed + steps) - s->seq.kv_blocks());
  }
  return blocks;
}

std::int64_t WorkerState::running_context_tokens() const {
  std::int64_t tokens = 0;
  for (const Slot* s : running_slots()) tokens += s->seq.computed;
  return tokens;
}

BatchPlan WorkerState::decode_all_plan() const {
  BatchPlan plan;
  plan.kind = BatchKind::kIteration;
  plan.entries.reserve(running_.size());
  for (RequestId id : running_) plan.entries.push_back(BatchEntry{id, 0, true});
  return plan;
}

std::vector<Finished> WorkerState::advance_decode(std::int64_t steps) {
  assert(steps >= 1 && steps <= decode_steps_to_completion());
  assert(decode_blocks_needed(steps) <= kv_.free() || !kv_.tracked());
  if (kv_.prefix_caching()) allocate_decode_blocks(steps);
  bool any_done = false;
  const auto n = static_cast<std::int32_t>(steps);
  for (Slot* s : running_slots()) {
    Sequence& seq = s->seq;
    seq.computed += n;
    seq.generated += n;
    grow(seq, kv_.blocks_for(seq.computed));
    if (kv_.prefix_caching()) cache_full_blocks(*s);
    if (seq.done()) s->leaving = any_done = true;
  }
  std::vector<Finished> completed;
  if (!any_done) return completed;
  // In running order, as finish() of decode_all_plan() returns them.
  scratch_ids_.clear();
  for (const Slot* s : running_slots()) {
    if (s->leaving) scratch_ids_.push_back(s->seq.request.id);
  }
  sweep_running();
  for (RequestId id : scratch_ids_) {
    release_blocks(slot(id).seq);
    completed.push_back(take_out(id, Outcome::kCompleted, {}));
  }
  scratch_ids_.clear();
  return completed;
}

// Step by step, step j takes a block for each running sequence (in running order) whose new token
// starts one: a sequence holding b blocks for c tokens takes its next at step b * block_tokens - c + 1
// and then every block_tokens steps. The same blocks in the same order here, so that later
// evictions do not depend on whether the steps ran one at a time.
void WorkerState::allocate_decode_blocks(std::int64_t steps) {
  const std::vector<Slot*>& slots = running_slots();
  const std::int64_t tokens = kv_.block_tokens();
  scratch_positions_.resize(slots.size());
  for (std::size_t i = 0; i < slots.size(); ++i) scratch_positions_[i] = i;
  const auto first_step = [&](std::size_t i) {
    const Sequence& seq = slots[i]->seq;
    return seq.kv_blocks() * tokens - seq.computed + 1;
  };
  std::stable_sort(scratch_positions_.begin(), scratch_positions_.end(),
                   [&](std::size_t a, std::size_t b) { return first_step(a) < first_step(b); });
  std::vector<std::int64_t> first(slots.size());
  for (std::size_t i = 0; i < slots.size(); ++i) first[i] = first_step(i);
  for (std::int64_t round = 0;; round += tokens) {
    bool any = false;
    for (std::size_t i : scratch_positions_) {
      if (first[i] + round > steps) continue;
      Sequence& seq = slots[i]->seq;
      seq.blocks.push_back(kv_.allocate());
      seq.held_blocks = static_cast<std::int64_t>(seq.blocks.size());
      any = true;
    }
    if (!any) break;
  }
  scratch_positions_.clear();
}

IterationShape WorkerState::iteration_shape(const BatchPlan& plan) const {
  IterationShape shape;
  for (const BatchEntry& e : plan.entries) {
    const Sequence& seq = get(e.id);
    if (e.decode) {
      ++shape.decode_seqs;
      shape.decode_context_tokens += std::int64_t{seq.computed} + 1;
    } else if (e.prefill_tokens > 0) {
      const std::int64_t chunk = e.prefill_tokens;
      shape.prefill_tokens += chunk;
      ++shape.prefill_seqs;
      shape.prefill_prior_tokens += seq.computed;
      shape.prefill_attn_pairs += chunk * (seq.computed + chunk);
    }
  }
  return shape;
}

RequestBatchShape WorkerState::request_batch_shape(const BatchPlan& plan) const {
  RequestBatchShape shape;
  std::int64_t input_sum = 0;
  for (const BatchEntry& e : plan.entries) {
    const Request& r = get(e.id).request;
    ++shape.batch_size;
    input_sum += r.input_tokens;
    shape.max_input_tokens = std::max<std::int64_t>(shape.max_input_tokens, r.input_tokens);
    shape.output_tokens += r.output_tokens;
    shape.max_output_tokens = std::max<std::int64_t>(shape.max_output_tokens, r.output_tokens);
  }
  shape.input_tokens = plan.padded_input_tokens > 0 ? plan.padded_input_tokens : input_sum;
  return shape;
}

TimeUs WorkerState::plan_time_us(const BatchPlan& plan, const CostModel& cost, const InstanceSpec& instance) const {
  assert(!plan.idle());
  if (plan.kind == BatchKind::kRequestBatch) return cost.batch_time_us(instance, request_batch_shape(plan));
  return cost.iteration_time_us(instance, iteration_shape(plan));
}

}  // namespace twinfer
