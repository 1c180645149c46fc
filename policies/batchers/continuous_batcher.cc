#include "policies/batchers/continuous_batcher.h"

#include <algorithm>
#include <cassert>
#include <climits>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "policies/batchers/waiting_delta.h"
#include "core/model_dimensions.h"
#include "policies/servable.h"

namespace twinfer {

namespace {

std::string gb(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  return buf;
}

}  // namespace

ContinuousOptions read_continuous_options(JsonParams& p) {
  ContinuousOptions o;
  p.get("max_num_seqs", o.max_num_seqs);
  p.get("max_num_batched_tokens", o.max_num_batched_tokens);
  p.get("chunked_prefill", o.chunked_prefill);
  p.get("block_tokens", o.block_tokens);
  p.get("gpu_memory_utilization", o.gpu_memory_utilization);
  p.get("kv_blocks", o.kv_blocks);
  p.get("watermark", o.watermark);
  p.get("prefix_caching", o.prefix_caching);
  p.get("host_kv_blocks", o.host_kv_blocks);
  p.get("host_cache_gb", o.host_cache_gb);
  read_queue_order(p, "order", o.order);
  p.get("priority_levels", o.priority_levels);
  p.require(o.max_num_seqs >= 1, "max_num_seqs", "must be at least 1");
  // Every running sequence decodes each iteration, so the budget must cover them all.
  p.require(o.max_num_batched_tokens >= o.max_num_seqs, "max_num_batched_tokens",
            "must be >= max_num_seqs (" + std::to_string(o.max_num_seqs) + ")");
  p.require(o.block_tokens >= 1, "block_tokens", "must be at least 1");
  p.require(o.gpu_memory_utilization > 0 && o.gpu_memory_utilization <= 1, "gpu_memory_utilization",
            "must be in (0, 1]");
  p.require(o.kv_blocks >= 0, "kv_blocks", "must be >= 0 (0: derived from the instance)");
  p.require(o.watermark >= 0 && o.watermark < 1, "watermark", "must be in [0, 1)");
  p.require(o.priority_levels >= 0, "priority_levels", "must be >= 0");
  p.require(o.host_kv_blocks >= 0 && o.host_kv_blocks <= INT32_MAX, "host_kv_blocks", "must be in [0, 2^31)");
  p.require(std::isfinite(o.host_cache_gb) && o.host_cache_gb >= 0 && o.host_cache_gb <= 1e6, "host_cache_gb",
            "must be in [0, 1e6] GB");
  p.require(o.host_kv_blocks == 0 || o.host_cache_gb == 0, "host_cache_gb",
            "set host_kv_blocks or host_cache_gb, not both");
  p.require(o.prefix_caching || (o.host_kv_blocks == 0 && o.host_cache_gb == 0),
            o.host_kv_blocks > 0 ? "host_kv_blocks" : "host_cache_gb",
            "a host-memory tier keeps prefix-cache blocks: it needs prefix_caching true");
  p.done();
  return o;
}

double kv_bytes_per_token(const ModelSpec& m) {
  const double bytes = model_kv_bytes_per_token(m);
  if (!(bytes > 0)) {
    throw Error("model '" + m.name + "' has no layers, heads and hidden to derive kv_bytes_per_token from; set it");
  }
  return bytes;
}

std::int64_t derive_kv_blocks(const InstanceSpec& instance, int block_tokens, double gpu_memory_utilization,
                              const std::string& where) {
  const ModelSpec& m = instance.model;
  const std::string what = where + ": instance '" + instance.name + "'";
  double bytes_per_block = 0;
  try {
    bytes_per_block = kv_bytes_per_token(m) * block_tokens;
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  const double weights = model_weights_bytes(m);
  const double usable = instance.device.mem_gb * 1e9 * instance.tp() * gpu_memory_utilization;
  const double blocks = std::floor((usable - weights) / bytes_per_block);
  if (!(blocks >= 1)) {
    throw Error(what + ": model '" + m.name + "' weights (" + gb(weights) + ") leave no room for a KV block (" +
                gb(bytes_per_block) + ") in " + gb(usable) + " (mem_gb x " + std::to_string(instance.tp()) +
                " GPU(s) x gpu_memory_utilization)");
  }
  return static_cast<std::int64_t>(blocks);
}

ContinuousBatcher::ContinuousBatcher(ContinuousOptions options, const CostModel* cost, const InstanceSpec* instance)
    : options_(std::move(options)), ranker_(options_.order, options_.priority_levels, cost, instance) {
  assert(options_.kv_blocks > 0 && options_.block_tokens > 0);
}

BatchPlan ContinuousBatcher::next(const WorkerState& state, TimeUs now_us) {
  BatchPlan plan;
  plan.kind = BatchKind::kIteration;
  plan.entries.reserve(state.running().size() + 4);  // one allocation per step, not log2(batch)
  assert(state.kv().tracked() && "the worker state must be created with kv_capacity()");
  Step step;
  step.state = &state;
  step.budget = options_.max_num_batched_tokens;
  step.free_blocks = state.kv().free();
  if (options_.order != QueueOrder::kFcfs) sync_index(state);
  plan_running(state, plan, step);
  // Like vLLM: no new prompts in an iteration that had to evict, or they would be evicted next.
  if (plan.preempt.empty()) admit_waiting(state, plan, step);
  // Drops and preemptions change the queue: ask again once begin() has carried them out.
  if (plan.idle() && (!plan.drop.empty() || !plan.preempt.empty())) plan.wake_at_us = now_us;
  return plan;
}

std::int64_t ContinuousBatcher::steady_decode_steps(const WorkerState& state) const {
  if (options_.order == QueueOrder::kPriority || !state.waiting().empty()) return 0;
  // Every running sequence fits one iteration's budget (max_num_seqs <= max_num_batched_tokens).
  if (static_cast<std::int64_t>(state.running().size()) > options_.max_num_batched_tokens) return 0;
  const std::int64_t steps = state.decode_steps_to_completion();
  if (steps == 0) return 0;
  // A step preempts when its new blocks exceed the free ones; none is freed before the last step.
  const std::int64_t free = state.kv().free();
  if (state.decode_blocks_needed(steps) <= free) return steps;
  std::int64_t fits = 0;  // the most steps whose blocks fit: binary search (needs grow with steps)
  std::int64_t over = steps;
  while (over - fits > 1) {
    const std::int64_t mid = fits + (over - fits) / 2;
    (state.decode_blocks_needed(mid) <= free ? fits : over) = mid;
  }
  return fits;
}

void ContinuousBatcher::plan_running(const WorkerState& state, BatchPlan& plan, Step& step) {
  const auto& ids = state.running();
  const std::size_t n = ids.size();
  running_.resize(n);
  for (std::size_t i = 0; i < n; ++i) running_[i] = &state.running_sequence(i);
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), std::size_t{0});
  if (options_.order == QueueOrder::kPriority) {
    std::stable_sort(order_.begin(), order_.end(), [this](std::size_t a, std::size_t b) {
      return ranker_.level(running_[a]->request) > ranker_.level(running_[b]->request);
    });
  }
  scheduled_.assign(n, 0);
  preempted_.assign(n, 0);
  step.victim_end = n;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t pos = order_[k];
    if (!preempted_[pos] && !running_[pos]->in_prefill()) schedule_decode(k, plan, step);
  }
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t pos = order_[k];
    if (!preempted_[pos] && !scheduled_[pos] && running_[pos]->in_prefill()) schedule_prefill(k, plan, step);
  }
  step.resident_seqs = 0;
  for (std::size_t i = 0; i < n; ++i) step.resident_seqs += preempted_[i] ? 0 : 1;
}

void ContinuousBatcher::schedule_decode(std::size_t k, BatchPlan& plan, Step& step) {
  const std::size_t pos = order_[k];
  const Sequence& seq = *running_[pos];
  if (step.budget == 0) return;
  const std::int64_t need = step.state->kv().blocks_for(std::int64_t{seq.computed} + 1) - seq.kv_blocks();
  while (need > step.free_blocks) {
    if (!preempt_victim(k, /*skip_scheduled=*/false, plan, step)) {
      preempt_at(pos, plan, step);
      return;
    }
  }
  step.free_blocks -= std::max<std::int64_t>(need, 0);
  step.budget -= 1;
  plan.entries.push_back(BatchEntry{seq.request.id, 0, true});
  scheduled_[pos] = 1;
}

void ContinuousBatcher::schedule_prefill(std::size_t k, BatchPlan& plan, Step& step) {
  const std::size_t pos = order_[k];
  const Sequence& seq = *running_[pos];
  if (step.budget == 0) return;
  const std::int64_t remaining = seq.prefill_remaining();
  const int block_tokens = step.state->kv().block_tokens();
  auto room_tokens = [&] { return (seq.kv_blocks() + step.free_blocks) * block_tokens - seq.computed; };
  // Shrinking the chunk to the free blocks keeps progress; evict only when not one token fits.
  while (room_tokens() <= 0 && preempt_victim(k, /*skip_scheduled=*/true, plan, step)) {
  }
  const std::int64_t chunk = std::min({remaining, step.budget, room_tokens()});
  if (chunk <= 0 || (!may_chunk(seq) && chunk < remaining)) return;
  const std::int64_t need = step.state->kv().blocks_for(seq.computed + chunk) - seq.kv_blocks();
  step.free_blocks -= std::max<std::int64_t>(need, 0);
  step.budget -= chunk;
  plan.entries.push_back(BatchEntry{seq.request.id, static_cast<std::int32_t>(chunk), false});
  scheduled_[pos] = 1;
}

bool ContinuousBatcher::preempt_victim(std::size_t k, bool skip_scheduled, BatchPlan& plan, Step& step) {
  while (step.victim_end > k + 1) {
    const std::size_t pos = order_[--step.victim_end];
    if (preempted_[pos] || (skip_scheduled && scheduled_[pos])) continue;
    preempt_at(pos, plan, step);
    return true;
  }
  return false;
}

void ContinuousBatcher::preempt_at(std::size_t pos, BatchPlan& plan, Step& step) {
  const Sequence& seq = *running_[pos];
  assert(!scheduled_[pos]);
  preempted_[pos] = 1;
  plan.preempt.push_back(seq.request.id);
  step.free_blocks += step.state->blocks_freed_by(seq);
  // begin() pushes each preempted sequence to the front of the queue in plan order.
  if (options_.order != QueueOrder::kFcfs) add_to_index(seq.request, --front_ordinal_);
}

bool ContinuousBatcher::may_chunk(const Sequence& seq) const {
  // Without chunked prefill a prompt runs whole; the recompute of a preempted sequence may have
  // outgrown the budget, and chunking it beats dropping a request that was already running.
  return options_.chunked_prefill || seq.prefill_target > options_.max_num_batched_tokens;
}

std::string ContinuousBatcher::never_fits(const Sequence& seq, const KvBlocks& kv) const {
  const std::int64_t blocks = peak_kv_blocks(seq.request, kv);
  if (blocks > kv.total()) {
    return "needs " + std::to_string(blocks) + " KV blocks, cache has " + std::to_string(kv.total());
  }
  const std::int64_t prompt = seq.prefill_target - seq.generated;
  if (!options_.chunked_prefill && prompt > options_.max_num_batched_tokens) {
    return "prompt of " + std::to_string(prompt) + " tokens exceeds max_num_batched_tokens " +
           std::to_string(options_.max_num_batched_tokens) + " (chunked_prefill is off)";
  }
  return {};
}

ContinuousBatcher::Admit ContinuousBatcher::try_admit(const Sequence& seq, BatchPlan& plan, Step& step) const {
  const KvBlocks& kv = step.state->kv();
  std::string reason = never_fits(seq, kv);
  if (!reason.empty()) {
    plan.drop.push_back(BatchDrop{seq.request.id, std::move(reason)});
    return Admit::kDropped;
  }
  assert(seq.computed == 0 && seq.kv_blocks() == 0);
  if (step.resident_seqs >= options_.max_num_seqs || step.budget == 0) return Admit::kStop;
  // The cached prefix is not computed again; taking its free blocks back leaves them fewer.
  const PrefixHit hit = step.state->prefix_hit(seq);
  const std::int64_t cached = hit.blocks * kv.block_tokens();
  const std::int64_t remaining = seq.prefill_remaining() - cached;
  const std::int64_t chunk = may_chunk(seq) ? std::min(remaining, step.budget) : remaining;
  if (chunk > step.budget) return Admit::kStop;
  const std::int64_t need = kv.blocks_for(cached + chunk) - hit.blocks + hit.free_blocks;
  // The watermark keeps room for running sequences to grow; an empty cache takes anyone that fits.
  const auto watermark_blocks = static_cast<std::int64_t>(options_.watermark * static_cast<double>(kv.total()));
  const bool cache_unused = step.free_blocks == kv.total();
  if (need > step.free_blocks || (!cache_unused && step.free_blocks - need < watermark_blocks)) return Admit::kStop;
  step.free_blocks -= need;
  step.budget -= chunk;
  ++step.resident_seqs;
  plan.entries.push_back(BatchEntry{seq.request.id, static_cast<std::int32_t>(chunk), false});
  return Admit::kAdmitted;
}

void ContinuousBatcher::admit_waiting(const WorkerState& state, BatchPlan& plan, Step& step) {
  if (options_.order == QueueOrder::kFcfs) {
    for (RequestId id : state.waiting()) {
      if (try_admit(state.get(id), plan, step) == Admit::kStop) return;
    }
    return;
  }
  for (auto it = ranked_.begin(); it != ranked_.end();) {
    if (try_admit(state.get(it->id), plan, step) == Admit::kStop) return;
    index_.erase(it->id);
    it = ranked_.erase(it);
  }
}

void ContinuousBatcher::sync_index(const WorkerState& state) {
  const auto& waiting = state.waiting();
  const WaitingDelta delta =
      waiting_delta(waiting, index_.size(), [this](RequestId id) { return index_.count(id) > 0; });
  if (delta.reset) {
    ranked_.clear();
    index_.clear();
  }
  for (std::size_t i = delta.first_new; i < waiting.size(); ++i) {
    add_to_index(state.get(waiting[i]).request, ++back_ordinal_);
  }
}

void ContinuousBatcher::add_to_index(const Request& request, std::int64_t ordinal) {
  const Item item{ranker_.rank(request), ordinal, request.id};
  ranked_.insert(item);
  index_.emplace(request.id, item);
}

std::unique_ptr<Batcher> make_continuous_batcher(JsonParams& params, const PolicyContext& ctx) {
  ContinuousOptions options = read_continuous_options(params);
  if (options.kv_blocks == 0) {
    if (ctx.instance == nullptr) {
      throw Error(params.where() + ".kv_blocks: not set and no instance to derive it from");
    }
    options.kv_blocks = derive_kv_blocks(*ctx.instance, options.block_tokens, options.gpu_memory_utilization,
                                         params.where());
  }
  if (options.host_cache_gb > 0) {
    if (ctx.instance == nullptr) throw Error(params.where() + ".host_cache_gb: no instance to size its blocks by");
    const double block_bytes = kv_bytes_per_token(ctx.instance->model) * options.block_tokens;
    const double blocks = std::floor(options.host_cache_gb * 1e9 / block_bytes);
    if (!(blocks >= 1)) {
      char what[160];
      std::snprintf(what, sizeof what, "%g GB holds no KV block of %.2f MB", options.host_cache_gb, block_bytes / 1e6);
      throw Error(params.where() + ".host_cache_gb: " + what + " (instance '" + ctx.instance->name + "')");
    }
    options.host_kv_blocks = static_cast<std::int64_t>(std::min<double>(blocks, INT32_MAX));
  }
  return std::make_unique<ContinuousBatcher>(std::move(options), ctx.cost, ctx.instance);
}

}  // namespace twinfer
