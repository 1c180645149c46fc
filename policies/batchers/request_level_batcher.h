// Request-level dynamic batching (Triton-style): a batch runs every request in it to completion.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "policies/batcher.h"
#include "policies/batchers/batcher_queue_order.h"
#include "core/params.h"
#include "policies/registry.h"
#include "policies/worker_state.h"

namespace twinfer {

struct RequestLevelOptions {
  int max_batch_size = 8;
  TimeUs max_queue_delay_us = 1000;        // longest the oldest waiting request waits for company
  std::vector<int> preferred_batch_sizes;  // each in [1, max_batch_size]
  QueueOrder order = QueueOrder::kFcfs;    // "fcfs" | "sjf" | "priority"
  int priority_levels = 0;                 // 0: priorities as given; else clamped to [0, levels - 1]
  bool bucketing = false;                  // batch only requests of one input-length bucket, padded
  std::vector<std::int64_t> bucket_edges = {128, 512, 2048, 8192};  // inclusive upper bounds, tokens
  std::int64_t max_batch_tokens = 0;       // 0: no cap; else cap on a batch's (padded) input tokens
};

// Fills `options` from params (keys as the field names) and checks ranges; calls params.done().
RequestLevelOptions read_request_level_options(JsonParams& params);

// Runs a batch as soon as the largest preferred size (or max_batch_size when none) can be filled;
// otherwise once the oldest waiting request has waited max_queue_delay_us, with the largest
// preferred size that is there, else with all that is there. With bucketing, a batch holds one
// bucket and pays for its longest input (padded_input_tokens = size * longest input). A request
// whose input alone exceeds max_batch_tokens is dropped.
//
// Keeps its own ordered index of the worker's waiting queue, so next() costs O(batch + new
// arrivals) (times log of the queue length for the index), not O(queue).
// REQUIRES: every plan next() returns (drops included) is passed to state.begin() before the next
// call; next() is called only while the worker runs nothing.
class RequestLevelBatcher : public Batcher {
 public:
  explicit RequestLevelBatcher(RequestLevelOptions options, const CostModel* cost = nullptr,
                               const InstanceSpec* instance = nullptr);
  BatchPlan next(const WorkerState& state, TimeUs now_us) override;
  std::string name() const override { return "request_level"; }

 private:
  struct Item {
    std::int64_t rank;
    std::int64_t ordinal;  // queue position: smaller arrived earlier
    RequestId id;
    std::int32_t input_tokens;
    bool operator<(const Item& o) const { return rank != o.rank ? rank < o.rank : ordinal < o.ordinal; }
  };
  struct Bucket {
    std::set<Item> by_rank;
    std::set<std::pair<std::int64_t, RequestId>> by_age;  // (ordinal, id)
  };
  struct Fill {
    int count = 0;            // requests that fit, in rank order
    bool token_capped = false;  // the next one would exceed max_batch_tokens
  };

  void sync(const WorkerState& state, std::vector<BatchDrop>& drops);
  void add(const Request& request, std::vector<BatchDrop>& drops);
  std::size_t bucket_of(std::int64_t input_tokens) const;
  std::int64_t batch_tokens(int count, std::int64_t sum, std::int64_t longest) const;
  Fill fill(const Bucket& bucket) const;
  int preferred_size_at_most(int count) const;
  void take(std::size_t bucket, int count, BatchPlan& plan);

  RequestLevelOptions options_;
  QueueRanker ranker_;
  int target_size_;  // the size that runs at once
  std::vector<Bucket> buckets_;
  std::unordered_set<RequestId> known_;  // ids in buckets_
  std::int64_t next_ordinal_ = 0;
};

std::unique_ptr<Batcher> make_request_level_batcher(JsonParams& params, const PolicyContext& ctx);

}  // namespace twinfer
