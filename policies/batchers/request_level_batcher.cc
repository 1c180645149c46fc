#include "policies/batchers/request_level_batcher.h"

#include <algorithm>
#include <cassert>

#include "policies/batchers/waiting_delta.h"

namespace twinfer {

RequestLevelOptions read_request_level_options(JsonParams& p) {
  RequestLevelOptions o;
  p.get("max_batch_size", o.max_batch_size);
  p.get("max_queue_delay_us", o.max_queue_delay_us);
  p.get("preferred_batch_sizes", o.preferred_batch_sizes);
  read_queue_order(p, "order", o.order);
  p.get("priority_levels", o.priority_levels);
  p.get("bucketing", o.bucketing);
  p.get("bucket_edges", o.bucket_edges);
  p.get("max_batch_tokens", o.max_batch_tokens);
  p.require(o.max_batch_size >= 1, "max_batch_size", "must be at least 1");
  p.require(o.max_queue_delay_us >= 0, "max_queue_delay_us", "must be >= 0");
  for (int size : o.preferred_batch_sizes) {
    p.require(size >= 1 && size <= o.max_batch_size, "preferred_batch_sizes",
              "each size must be in [1, max_batch_size = " + std::to_string(o.max_batch_size) + "], got " +
                  std::to_string(size));
  }
  p.require(o.priority_levels >= 0, "priority_levels", "must be >= 0");
  for (std::size_t i = 0; i < o.bucket_edges.size(); ++i) {
    p.require(o.bucket_edges[i] > 0 && (i == 0 || o.bucket_edges[i] > o.bucket_edges[i - 1]), "bucket_edges",
              "must be positive and strictly increasing");
  }
  p.require(o.max_batch_tokens >= 0, "max_batch_tokens", "must be >= 0 (0: no cap)");
  p.done();
  return o;
}

RequestLevelBatcher::RequestLevelBatcher(RequestLevelOptions options, const CostModel* cost,
                                         const InstanceSpec* instance)
    : options_(std::move(options)), ranker_(options_.order, options_.priority_levels, cost, instance) {
  const auto& preferred = options_.preferred_batch_sizes;
  target_size_ = preferred.empty() ? options_.max_batch_size : *std::max_element(preferred.begin(), preferred.end());
  buckets_.resize(options_.bucketing ? options_.bucket_edges.size() + 1 : 1);
}

std::size_t RequestLevelBatcher::bucket_of(std::int64_t input_tokens) const {
  if (!options_.bucketing) return 0;
  const auto& edges = options_.bucket_edges;
  return static_cast<std::size_t>(std::lower_bound(edges.begin(), edges.end(), input_tokens) - edges.begin());
}

std::int64_t RequestLevelBatcher::batch_tokens(int count, std::int64_t sum, std::int64_t longest) const {
  return options_.bucketing ? count * longest : sum;
}

void RequestLevelBatcher::add(const Request& request, std::vector<BatchDrop>& drops) {
  if (options_.max_batch_tokens > 0 && request.input_tokens > options_.max_batch_tokens) {
    drops.push_back({request.id, "input of " + std::to_string(request.input_tokens) +
                                     " tokens exceeds max_batch_tokens " + std::to_string(options_.max_batch_tokens)});
    return;
  }
  const Item item{ranker_.rank(request), next_ordinal_++, request.id, request.input_tokens};
  Bucket& bucket = buckets_[bucket_of(request.input_tokens)];
  bucket.by_rank.insert(item);
  bucket.by_age.emplace(item.ordinal, item.id);
  known_.insert(request.id);
}

void RequestLevelBatcher::sync(const WorkerState& state, std::vector<BatchDrop>& drops) {
  const auto& waiting = state.waiting();
  const WaitingDelta delta =
      waiting_delta(waiting, known_.size(), [this](RequestId id) { return known_.count(id) > 0; });
  if (delta.reset) {
    for (Bucket& b : buckets_) b = Bucket{};
    known_.clear();
  }
  for (std::size_t i = delta.first_new; i < waiting.size(); ++i) add(state.get(waiting[i]).request, drops);
}

RequestLevelBatcher::Fill RequestLevelBatcher::fill(const Bucket& bucket) const {
  Fill f;
  std::int64_t sum = 0;
  std::int64_t longest = 0;
  for (const Item& item : bucket.by_rank) {
    if (f.count == target_size_) break;
    const std::int64_t new_longest = std::max<std::int64_t>(longest, item.input_tokens);
    if (options_.max_batch_tokens > 0 &&
        batch_tokens(f.count + 1, sum + item.input_tokens, new_longest) > options_.max_batch_tokens) {
      f.token_capped = true;
      break;
    }
    sum += item.input_tokens;
    longest = new_longest;
    ++f.count;
  }
  return f;
}

int RequestLevelBatcher::preferred_size_at_most(int count) const {
  int best = 0;
  for (int size : options_.preferred_batch_sizes) {
    if (size <= count) best = std::max(best, size);
  }
  return best > 0 ? best : count;
}

void RequestLevelBatcher::take(std::size_t bucket_index, int count, BatchPlan& plan) {
  Bucket& bucket = buckets_[bucket_index];
  std::int64_t longest = 0;
  auto it = bucket.by_rank.begin();
  for (int i = 0; i < count; ++i, it = bucket.by_rank.erase(it)) {
    assert(it != bucket.by_rank.end());
    plan.entries.push_back(BatchEntry{it->id, it->input_tokens, false});
    longest = std::max<std::int64_t>(longest, it->input_tokens);
    bucket.by_age.erase({it->ordinal, it->id});
    known_.erase(it->id);
  }
  if (options_.bucketing) plan.padded_input_tokens = count * longest;
}

BatchPlan RequestLevelBatcher::next(const WorkerState& state, TimeUs now_us) {
  assert(state.running().empty() && "request-level batches run one at a time");
  BatchPlan plan;
  plan.kind = BatchKind::kRequestBatch;
  sync(state, plan.drop);

  // A bucket that can fill a batch runs now; among several, the one whose best request ranks first.
  int full_bucket = -1;
  Fill full_fill;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    if (buckets_[b].by_rank.empty()) continue;
    const Fill f = fill(buckets_[b]);
    if (f.count < target_size_ && !f.token_capped) continue;
    if (full_bucket < 0 || *buckets_[b].by_rank.begin() < *buckets_[full_bucket].by_rank.begin()) {
      full_bucket = static_cast<int>(b);
      full_fill = f;
    }
  }
  if (full_bucket >= 0) {
    take(static_cast<std::size_t>(full_bucket), preferred_size_at_most(full_fill.count), plan);
    return plan;
  }

  int oldest_bucket = -1;
  for (std::size_t b = 0; b < buckets_.size(); ++b) {
    if (buckets_[b].by_age.empty()) continue;
    if (oldest_bucket < 0 || *buckets_[b].by_age.begin() < *buckets_[oldest_bucket].by_age.begin()) {
      oldest_bucket = static_cast<int>(b);
    }
  }
  if (oldest_bucket < 0) return plan;  // nothing waits; an arrival wakes the worker
  const RequestId oldest = buckets_[oldest_bucket].by_age.begin()->second;
  const TimeUs deadline_us = state.get(oldest).enqueued_us + options_.max_queue_delay_us;
  if (now_us < deadline_us) {
    plan.wake_at_us = deadline_us;
    return plan;
  }
  const Fill f = fill(buckets_[oldest_bucket]);
  take(static_cast<std::size_t>(oldest_bucket), preferred_size_at_most(f.count), plan);
  return plan;
}

std::unique_ptr<Batcher> make_request_level_batcher(JsonParams& params, const PolicyContext& ctx) {
  return std::make_unique<RequestLevelBatcher>(read_request_level_options(params), ctx.cost, ctx.instance);
}

}  // namespace twinfer
