#include "policies/batchers/request_level_batcher.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;

std::vector<RequestId> entry_ids(const BatchPlan& plan) {
  std::vector<RequestId> out;
  for (const BatchEntry& e : plan.entries) out.push_back(e.id);
  return out;
}

// Runs a plan through the state as a driver would, finishing it at once.
void run(WorkerState& state, const BatchPlan& plan, TimeUs now_us) {
  state.begin(plan, now_us);
  state.finish(plan, now_us);
}

TEST(RequestLevelBatcherTest, RunsAtOnceWhenFull) {
  RequestLevelOptions o;
  o.max_batch_size = 4;
  RequestLevelBatcher batcher(o);
  WorkerState state;
  for (RequestId id = 1; id <= 5; ++id) state.enqueue(make_request(id, 0, 100 + int(id), 10), TimeUs(id));
  BatchPlan plan = batcher.next(state, 5);
  EXPECT_EQ(plan.kind, BatchKind::kRequestBatch);
  EXPECT_EQ(entry_ids(plan), (std::vector<RequestId>{1, 2, 3, 4}));
  EXPECT_EQ(plan.entries[2].prefill_tokens, 103);
  EXPECT_FALSE(plan.entries[2].decode);
  EXPECT_EQ(plan.padded_input_tokens, 0);
  EXPECT_TRUE(plan.drop.empty());
}

TEST(RequestLevelBatcherTest, WaitsForTheOldestRequestsDelay) {
  RequestLevelOptions o;
  o.max_batch_size = 4;
  o.max_queue_delay_us = 1000;
  RequestLevelBatcher batcher(o);
  WorkerState state;
  BatchPlan empty = batcher.next(state, 0);
  EXPECT_TRUE(empty.idle());
  EXPECT_EQ(empty.wake_at_us, kNever);

  state.enqueue(make_request(1), 100);
  state.enqueue(make_request(2), 250);
  BatchPlan a = batcher.next(state, 300);
  EXPECT_TRUE(a.idle());
  EXPECT_EQ(a.wake_at_us, 1100);
  BatchPlan b = batcher.next(state, 1099);
  EXPECT_TRUE(b.idle());
  EXPECT_EQ(b.wake_at_us, 1100);
  BatchPlan c = batcher.next(state, 1100);
  EXPECT_EQ(entry_ids(c), (std::vector<RequestId>{1, 2}));
  run(state, c, 1100);
  state.enqueue(make_request(3), 1200);
  EXPECT_EQ(batcher.next(state, 1200).wake_at_us, 2200);
}

TEST(RequestLevelBatcherTest, PreferredSizes) {
  RequestLevelOptions o;
  o.max_batch_size = 8;
  o.preferred_batch_sizes = {2, 4};
  RequestLevelBatcher batcher(o);
  WorkerState state;
  for (RequestId id = 1; id <= 3; ++id) state.enqueue(make_request(id), 0);
  // 3 < 4 (largest preferred): wait; at the deadline run the largest preferred size there is.
  EXPECT_EQ(batcher.next(state, 10).wake_at_us, 1000);
  BatchPlan p = batcher.next(state, 1000);
  EXPECT_EQ(entry_ids(p), (std::vector<RequestId>{1, 2}));
  run(state, p, 1000);
  // Request 3 is still overdue and no preferred size fits: it runs alone.
  BatchPlan q = batcher.next(state, 1000);
  EXPECT_EQ(entry_ids(q), std::vector<RequestId>{3});
  run(state, q, 1000);
  // Five waiting: the largest preferred size (4) runs at once, not max_batch_size.
  for (RequestId id = 4; id <= 8; ++id) state.enqueue(make_request(id), 2000);
  EXPECT_EQ(entry_ids(batcher.next(state, 2000)), (std::vector<RequestId>{4, 5, 6, 7}));
}

TEST(RequestLevelBatcherTest, SjfByTokensOrByPredictedWork) {
  // id 1: 10 in + 30 out = 40 tokens, work 1000 + 100 + 3000 = 4100 us.
  // id 2: 100 in + 0 out = 100 tokens, work 1000 + 1000 = 2000 us.
  RequestLevelOptions o;
  o.max_batch_size = 1;
  o.order = QueueOrder::kSjf;
  {
    RequestLevelBatcher batcher(o);
    WorkerState state;
    state.enqueue(make_request(1, 0, 10, 30), 0);
    state.enqueue(make_request(2, 0, 100, 0), 0);
    EXPECT_EQ(entry_ids(batcher.next(state, 0)), std::vector<RequestId>{1});
  }
  testing::FakeCostModel cost;
  testing::ViewBuilder views;
  views.add_worker();
  RequestLevelBatcher batcher(o, &cost, &views.instance(0));
  WorkerState state;
  state.enqueue(make_request(1, 0, 10, 30), 0);
  state.enqueue(make_request(2, 0, 100, 0), 0);
  BatchPlan p = batcher.next(state, 0);
  EXPECT_EQ(entry_ids(p), std::vector<RequestId>{2});
  run(state, p, 0);
  EXPECT_EQ(entry_ids(batcher.next(state, 0)), std::vector<RequestId>{1});
}

TEST(RequestLevelBatcherTest, FcfsTakesArrivalOrder) {
  RequestLevelOptions o;
  o.max_batch_size = 2;
  RequestLevelBatcher batcher(o);
  WorkerState state;
  state.enqueue(make_request(7, 0, 500, 500), 0);
  state.enqueue(make_request(3, 0, 1, 1, "", 9), 1);
  state.enqueue(make_request(5, 0, 1, 1), 2);
  EXPECT_EQ(entry_ids(batcher.next(state, 2)), (std::vector<RequestId>{7, 3}));
}

TEST(RequestLevelBatcherTest, PriorityThenArrivalWithClampedLevels) {
  auto make_state = [](WorkerState& state) {
    state.enqueue(make_request(1, 0, 10, 1, "", 0), 0);
    state.enqueue(make_request(2, 0, 10, 1, "", 5), 1);
    state.enqueue(make_request(3, 0, 10, 1, "", 1), 2);
    state.enqueue(make_request(4, 0, 10, 1, "", 5), 3);
  };
  RequestLevelOptions o;
  o.max_batch_size = 2;
  o.order = QueueOrder::kPriority;
  {
    RequestLevelBatcher batcher(o);
    WorkerState state;
    make_state(state);
    EXPECT_EQ(entry_ids(batcher.next(state, 3)), (std::vector<RequestId>{2, 4}));
  }
  o.priority_levels = 2;  // 5 and 1 both become level 1: arrival order among them
  RequestLevelBatcher batcher(o);
  WorkerState state;
  make_state(state);
  BatchPlan p = batcher.next(state, 3);
  EXPECT_EQ(entry_ids(p), (std::vector<RequestId>{2, 3}));
  run(state, p, 3);
  EXPECT_EQ(entry_ids(batcher.next(state, 3)), (std::vector<RequestId>{4, 1}));
}

TEST(RequestLevelBatcherTest, BucketingGroupsByLengthAndPadsToTheLongest) {
  RequestLevelOptions o;
  o.max_batch_size = 3;
  o.bucketing = true;
  o.bucket_edges = {128, 512};
  RequestLevelBatcher batcher(o);
  WorkerState state;
  const int inputs[] = {100, 600, 120, 300, 50};
  for (RequestId id = 1; id <= 5; ++id) state.enqueue(make_request(id, 0, inputs[id - 1], 4), TimeUs(id));
  BatchPlan p1 = batcher.next(state, 5);  // bucket <= 128 is full
  EXPECT_EQ(entry_ids(p1), (std::vector<RequestId>{1, 3, 5}));
  EXPECT_EQ(p1.padded_input_tokens, 3 * 120);
  run(state, p1, 5);
  BatchPlan wait = batcher.next(state, 5);
  EXPECT_TRUE(wait.idle());
  EXPECT_EQ(wait.wake_at_us, 1002);  // request 2 arrived at 2
  BatchPlan p2 = batcher.next(state, 1002);
  EXPECT_EQ(entry_ids(p2), std::vector<RequestId>{2});
  EXPECT_EQ(p2.padded_input_tokens, 600);
  run(state, p2, 1002);
  EXPECT_EQ(batcher.next(state, 1002).wake_at_us, 1004);
  BatchPlan p3 = batcher.next(state, 1004);
  EXPECT_EQ(entry_ids(p3), std::vector<RequestId>{4});
  EXPECT_EQ(p3.padded_input_tokens, 300);
}

TEST(RequestLevelBatcherTest, BucketedShapePaysForPadding) {
  RequestLevelOptions o;
  o.max_batch_size = 2;
  o.bucketing = true;
  o.bucket_edges = {128};
  RequestLevelBatcher batcher(o);
  WorkerState state;
  state.enqueue(make_request(1, 0, 10, 5), 0);
  state.enqueue(make_request(2, 0, 100, 7), 0);
  BatchPlan p = batcher.next(state, 0);
  state.begin(p, 0);
  RequestBatchShape shape = state.request_batch_shape(p);
  EXPECT_EQ(shape.input_tokens, 200);
  EXPECT_EQ(shape.max_input_tokens, 100);
  EXPECT_EQ(shape.output_tokens, 12);
  EXPECT_EQ(shape.max_output_tokens, 7);
}

TEST(RequestLevelBatcherTest, MaxBatchTokensCapsAndDropsOversizeRequests) {
  RequestLevelOptions o;
  o.max_batch_size = 8;
  o.max_batch_tokens = 250;
  RequestLevelBatcher batcher(o);
  WorkerState state;
  state.enqueue(make_request(1, 0, 100, 1), 0);
  state.enqueue(make_request(2, 0, 300, 1), 0);
  state.enqueue(make_request(3, 0, 100, 1), 0);
  state.enqueue(make_request(4, 0, 100, 1), 0);
  state.enqueue(make_request(5, 0, 40, 1), 0);
  BatchPlan p1 = batcher.next(state, 0);  // 100 + 100 fit, + 100 would pass 250: full now
  EXPECT_EQ(entry_ids(p1), (std::vector<RequestId>{1, 3}));
  ASSERT_EQ(p1.drop.size(), 1u);
  EXPECT_EQ(p1.drop[0].id, 2u);
  EXPECT_EQ(p1.drop[0].reason, "input of 300 tokens exceeds max_batch_tokens 250");
  std::vector<Finished> dropped = state.begin(p1, 0);
  ASSERT_EQ(dropped.size(), 1u);
  state.finish(p1, 0);
  BatchPlan p2 = batcher.next(state, 0);  // 100 + 40 = 140: not full
  EXPECT_TRUE(p2.idle());
  EXPECT_EQ(p2.wake_at_us, 1000);
  EXPECT_EQ(entry_ids(batcher.next(state, 1000)), (std::vector<RequestId>{4, 5}));
}

TEST(RequestLevelBatcherTest, MaxBatchTokensCountsPaddedTokens) {
  RequestLevelOptions o;
  o.max_batch_size = 4;
  o.bucketing = true;
  o.bucket_edges = {128, 512};
  o.max_batch_tokens = 400;
  RequestLevelBatcher batcher(o);
  WorkerState state;
  const int inputs[] = {100, 120, 50, 110};
  for (RequestId id = 1; id <= 4; ++id) state.enqueue(make_request(id, 0, inputs[id - 1], 1), 0);
  BatchPlan p = batcher.next(state, 0);  // 3 * 120 = 360 fits; 4 * 120 = 480 does not
  EXPECT_EQ(entry_ids(p), (std::vector<RequestId>{1, 2, 3}));
  EXPECT_EQ(p.padded_input_tokens, 360);
}

class DropId : public Admission {
 public:
  explicit DropId(RequestId id) : id_(id) {}
  AdmissionDecision admit(const Request&, const ClusterView&) override { return AdmissionDecision::admit(); }
  std::optional<std::string> drop_before_start(const Request& r, TimeUs) const override {
    if (r.id == id_) return std::string("expired");
    return std::nullopt;
  }
  bool may_drop_before_start() const override { return true; }
  std::string name() const override { return "drop_id"; }

 private:
  RequestId id_;
};

TEST(RequestLevelBatcherTest, NoticesRequestsPurgedBehindItsBack) {
  RequestLevelOptions o;
  o.max_batch_size = 8;
  RequestLevelBatcher batcher(o);
  WorkerState state;
  for (RequestId id = 1; id <= 3; ++id) state.enqueue(make_request(id), 0);
  EXPECT_EQ(batcher.next(state, 0).wake_at_us, 1000);
  DropId admission(2);
  EXPECT_EQ(state.purge_waiting(admission, 10).size(), 1u);
  state.enqueue(make_request(4), 20);
  BatchPlan p = batcher.next(state, 1000);
  EXPECT_EQ(entry_ids(p), (std::vector<RequestId>{1, 3, 4}));
}

// A tiny driver: arrivals, next -> begin -> finish with FakeCostModel times.
TEST(RequestLevelBatcherTest, EndToEndEveryRequestOnceAndBatchesObeyTheRules) {
  RequestLevelOptions o;
  o.max_batch_size = 6;
  o.max_queue_delay_us = 3000;
  o.preferred_batch_sizes = {2, 4};
  o.order = QueueOrder::kPriority;
  o.bucketing = true;
  o.bucket_edges = {64, 256};
  o.max_batch_tokens = 900;
  RequestLevelBatcher batcher(o);
  testing::FakeCostModel cost;
  testing::ViewBuilder views;
  views.add_worker();
  const InstanceSpec& instance = views.instance(0);
  auto bucket = [](int input_tokens) { return input_tokens <= 64 ? 0 : input_tokens <= 256 ? 1 : 2; };

  std::mt19937_64 rng(42);
  std::vector<Request> requests;
  TimeUs t = 0;
  for (RequestId id = 0; id < 200; ++id) {
    t += static_cast<TimeUs>(rng() % 4000);
    requests.push_back(make_request(id, t, 1 + int(rng() % 1000), int(rng() % 20), "", int(rng() % 3)));
  }
  WorkerState state;
  std::map<RequestId, Outcome> ended;
  std::size_t next_arrival = 0;
  TimeUs now = 0;
  int batches = 0;
  while (true) {
    while (next_arrival < requests.size() && requests[next_arrival].arrival_us <= now) {
      state.enqueue(requests[next_arrival], requests[next_arrival].arrival_us);
      ++next_arrival;
    }
    BatchPlan plan = batcher.next(state, now);
    for (const Finished& f : state.begin(plan, now)) {
      EXPECT_TRUE(ended.emplace(f.seq.request.id, f.outcome).second);
      EXPECT_GT(f.seq.request.input_tokens, 900);
    }
    if (plan.idle()) {
      const TimeUs arrival = next_arrival < requests.size() ? requests[next_arrival].arrival_us : kNever;
      const TimeUs wake = std::min(arrival, plan.wake_at_us);
      if (wake == kNever) break;
      ASSERT_GE(wake, now);
      now = wake;
      continue;
    }
    ++batches;
    const int size = static_cast<int>(plan.entries.size());
    EXPECT_LE(size, 4);  // the largest preferred size runs at once, so none is larger
    TimeUs oldest_enqueued = kNever;
    std::set<int> buckets;
    std::int64_t longest = 0;
    for (const BatchEntry& e : plan.entries) {
      const Sequence& s = state.get(e.id);
      oldest_enqueued = std::min(oldest_enqueued, s.enqueued_us);
      const int in = s.request.input_tokens;
      buckets.insert(bucket(in));
      longest = std::max<std::int64_t>(longest, in);
    }
    ASSERT_EQ(buckets.size(), 1u);
    EXPECT_EQ(plan.padded_input_tokens, size * longest);
    EXPECT_LE(plan.padded_input_tokens, 900);
    // A preferred size, or a batch whose oldest member waited out the delay, or one cut short by
    // the token cap: then some request of its bucket is still waiting and would not have fit.
    const bool preferred = size == 2 || size == 4;
    const bool overdue = now - oldest_enqueued >= 3000;
    bool token_capped = false;
    for (RequestId id : state.waiting()) {
      const int in = state.get(id).request.input_tokens;
      if (bucket(in) == *buckets.begin() && (size + 1) * std::max<std::int64_t>(longest, in) > 900) {
        token_capped = true;
      }
    }
    EXPECT_TRUE(preferred || overdue || token_capped) << "batch of " << size << " at " << now;
    now += state.plan_time_us(plan, cost, instance);
    for (const Finished& f : state.finish(plan, now)) {
      EXPECT_TRUE(ended.emplace(f.seq.request.id, f.outcome).second);
      EXPECT_EQ(f.outcome, Outcome::kCompleted);
      EXPECT_EQ(f.seq.first_token_us, now);
    }
  }
  EXPECT_EQ(ended.size(), requests.size());
  EXPECT_TRUE(state.empty());
  EXPECT_GT(batches, 20);
}

}  // namespace
}  // namespace twinfer
