#include "policies/batchers/continuous_batcher.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;

ContinuousOptions options(std::int64_t budget, int max_seqs, std::int64_t kv_blocks, int block_tokens = 16) {
  ContinuousOptions o;
  o.max_num_batched_tokens = budget;
  o.max_num_seqs = max_seqs;
  o.kv_blocks = kv_blocks;
  o.block_tokens = block_tokens;
  return o;
}

// Steps one worker: next -> begin -> finish, 10 us per step.
struct Driver {
  explicit Driver(ContinuousOptions o) : batcher(std::move(o)), state(batcher.kv_capacity()) {}

  BatchPlan step() {
    BatchPlan plan = batcher.next(state, now_us);
    dropped = state.begin(plan, now_us);
    now_us += 10;
    completed = state.finish(plan, now_us);
    return plan;
  }
  void add(RequestId id, int input, int output, int priority = 0) {
    state.enqueue(make_request(id, now_us, input, output, "", priority), now_us);
  }

  ContinuousBatcher batcher;
  WorkerState state;
  TimeUs now_us = 0;
  std::vector<Finished> dropped;
  std::vector<Finished> completed;
};

// (id, prefill tokens, decode) of each entry.
using E = std::tuple<RequestId, int, bool>;
std::vector<E> entries(const BatchPlan& plan) {
  std::vector<E> out;
  for (const BatchEntry& e : plan.entries) out.emplace_back(e.id, e.prefill_tokens, e.decode);
  return out;
}

TEST(ContinuousBatcherTest, ChunkedPrefillSplitsALongPrompt) {
  Driver d(options(1024, 8, 1000));
  d.add(1, 3000, 5);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 1024, false}}));
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 1024, false}}));
  BatchPlan last = d.step();
  EXPECT_EQ(last.kind, BatchKind::kIteration);
  EXPECT_EQ(entries(last), (std::vector<E>{{1, 952, false}}));
  EXPECT_EQ(d.state.get(1).generated, 1);
  EXPECT_EQ(d.state.get(1).first_token_us, 30);
  EXPECT_EQ(d.state.get(1).kv_blocks(), 188);  // 3000 / 16 rounded up
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 0, true}}));
}

TEST(ContinuousBatcherTest, DecodesComeFirstAndPrefillGetsTheRestOfTheBudget) {
  Driver d(options(1024, 8, 1000));
  d.add(2, 10, 100);
  d.add(1, 3000, 5);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{2, 10, false}, {1, 1014, false}}));
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{2, 0, true}, {1, 1023, false}}));
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{2, 0, true}, {1, 963, false}}));
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{2, 0, true}, {1, 0, true}}));
}

TEST(ContinuousBatcherTest, TokenBudgetIsExactWithManySequences) {
  Driver d(options(8, 4, 1000));
  d.add(1, 2, 10);
  d.add(2, 2, 10);
  d.add(3, 2, 10);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 2, false}, {2, 2, false}, {3, 2, false}}));
  d.add(4, 20, 10);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 0, true}, {2, 0, true}, {3, 0, true}, {4, 5, false}}));
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 0, true}, {2, 0, true}, {3, 0, true}, {4, 5, false}}));
  EXPECT_EQ(d.state.get(4).computed, 10);
}

TEST(ContinuousBatcherTest, MaxNumSeqsLimitsResidentSequences) {
  Driver d(options(100, 2, 1000));
  for (RequestId id = 1; id <= 3; ++id) d.add(id, 4, 2);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 4, false}, {2, 4, false}}));
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 0, true}, {2, 0, true}}));
  EXPECT_EQ(d.completed.size(), 2u);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{3, 4, false}}));
}

TEST(ContinuousBatcherTest, WithoutChunkedPrefillPromptsRunWholeOrAreDropped) {
  ContinuousOptions o = options(100, 4, 1000);
  o.chunked_prefill = false;
  Driver d(o);
  d.add(1, 30, 5);
  d.add(2, 150, 5);
  d.add(3, 80, 5);
  BatchPlan p1 = d.step();
  EXPECT_EQ(entries(p1), (std::vector<E>{{1, 30, false}}));
  ASSERT_EQ(p1.drop.size(), 1u);
  EXPECT_EQ(p1.drop[0].id, 2u);
  EXPECT_EQ(p1.drop[0].reason, "prompt of 150 tokens exceeds max_num_batched_tokens 100 (chunked_prefill is off)");
  ASSERT_EQ(d.dropped.size(), 1u);
  EXPECT_EQ(d.dropped[0].outcome, Outcome::kDropped);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 0, true}, {3, 80, false}}));
}

TEST(ContinuousBatcherTest, RequestLargerThanTheCacheIsDroppedWithReason) {
  Driver d(options(1000, 8, 10));
  d.add(1, 150, 20);  // 170 tokens: 11 blocks of 16
  d.add(2, 20, 5);
  BatchPlan p = d.step();
  ASSERT_EQ(p.drop.size(), 1u);
  EXPECT_EQ(p.drop[0].id, 1u);
  EXPECT_EQ(p.drop[0].reason, "needs 11 KV blocks, cache has 10");
  EXPECT_EQ(entries(p), (std::vector<E>{{2, 20, false}}));
}

TEST(ContinuousBatcherTest, OnlyDropsGiveAnImmediateWake) {
  Driver d(options(1000, 8, 10));
  d.add(1, 500, 1);
  BatchPlan p = d.step();
  EXPECT_TRUE(p.idle());
  EXPECT_EQ(p.drop.size(), 1u);
  EXPECT_EQ(p.wake_at_us, 0);
  BatchPlan q = d.step();
  EXPECT_TRUE(q.idle());
  EXPECT_EQ(q.wake_at_us, kNever);
}

TEST(ContinuousBatcherTest, KvExhaustionPreemptsTheLatestStartedAndRecomputesIt) {
  ContinuousOptions o = options(64, 4, 6, 4);
  o.watermark = 0;
  Driver d(o);
  d.add(1, 8, 8);
  d.add(2, 8, 8);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 8, false}, {2, 8, false}}));
  EXPECT_EQ(d.state.kv().free(), 2);
  const TimeUs first_token_2 = d.state.get(2).first_token_us;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 0, true}, {2, 0, true}}));
  }
  EXPECT_EQ(d.state.kv().free(), 0);  // 12 tokens each: 3 blocks each
  EXPECT_EQ(d.state.get(1).computed, 12);

  BatchPlan evict = d.step();  // 1 needs a 4th block: 2 goes
  EXPECT_EQ(evict.preempt, std::vector<RequestId>{2});
  EXPECT_EQ(entries(evict), (std::vector<E>{{1, 0, true}}));
  EXPECT_EQ(d.state.kv().free(), 2);
  EXPECT_EQ(std::vector<RequestId>(d.state.waiting().begin(), d.state.waiting().end()), std::vector<RequestId>{2});
  EXPECT_EQ(d.state.get(2).prefill_target, 13);  // 8 input + 5 generated
  EXPECT_EQ(d.state.get(2).preemptions, 1);

  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 0, true}}));  // 2 needs 4 blocks, 2 free
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 0, true}}));
  ASSERT_EQ(d.completed.size(), 1u);
  EXPECT_EQ(d.completed[0].seq.request.id, 1u);
  EXPECT_EQ(d.state.kv().free(), 6);

  EXPECT_EQ(entries(d.step()), (std::vector<E>{{2, 13, false}}));
  EXPECT_EQ(d.state.get(2).generated, 6);
  EXPECT_EQ(d.state.get(2).first_token_us, first_token_2);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{2, 0, true}}));
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{2, 0, true}}));
  ASSERT_EQ(d.completed.size(), 1u);
  EXPECT_EQ(d.completed[0].seq.generated, 8);
  EXPECT_EQ(d.completed[0].seq.preemptions, 1);
  EXPECT_EQ(d.state.kv().free(), 6);
  EXPECT_TRUE(d.state.empty());
}

TEST(ContinuousBatcherTest, VictimIsTheLatestStartedNotTheOneInNeed) {
  ContinuousOptions o = options(64, 4, 9, 4);
  Driver d(o);
  for (RequestId id = 1; id <= 3; ++id) d.add(id, 8, 8);
  d.step();
  for (int i = 0; i < 4; ++i) d.step();
  EXPECT_EQ(d.state.kv().free(), 0);
  BatchPlan p = d.step();
  EXPECT_EQ(p.preempt, std::vector<RequestId>{3});
  EXPECT_EQ(entries(p), (std::vector<E>{{1, 0, true}, {2, 0, true}}));
  EXPECT_EQ(d.state.kv().free(), 1);
}

TEST(ContinuousBatcherTest, PriorityOrderAdmitsHigherPriorityFirst) {
  ContinuousOptions o = options(100, 1, 100);
  o.order = QueueOrder::kPriority;
  Driver d(o);
  d.add(1, 4, 1, 0);
  d.add(2, 4, 1, 3);
  d.add(3, 4, 1, 1);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{2, 4, false}}));
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{3, 4, false}}));
  d.add(4, 4, 1, 2);
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{4, 4, false}}));
  EXPECT_EQ(entries(d.step()), (std::vector<E>{{1, 4, false}}));
}

TEST(ContinuousBatcherTest, KvBlocksDerivedFromTheInstance) {
  testing::ViewBuilder views;
  views.add_worker();
  // (80e9 * 0.9 - 2e9 weights) / (131072 bytes per token * 16) = 33378.6
  EXPECT_EQ(derive_kv_blocks(views.instance(0), 16, 0.9, "b"), 33378);
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(testing::test_model()), 131072);

  ModelSpec gqa = testing::test_model("gqa");
  gqa.kv_bytes_per_token = 0;
  gqa.kv_heads = 4;
  // 2 * 16 layers * 4 kv heads * 128 head dim * 2 bytes.
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(gqa), 32768);
  views.add_worker(testing::test_device(), gqa, /*tp=*/2);
  // (80e9 * 2 GPUs * 0.5 - 2e9) / (32768 * 16) = 148773.2
  EXPECT_EQ(derive_kv_blocks(views.instance(1), 16, 0.5, "b"), 148773);
}

TEST(ContinuousBatcherTest, WeightsThatDoNotFitAreAnErrorNamingTheInstance) {
  testing::ViewBuilder views;
  views.add_worker(testing::test_device("SMALL", 100, 1000, /*mem_gb=*/2));
  try {
    derive_kv_blocks(views.instance(0), 16, 0.9, "policies.batcher");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("policies.batcher"), std::string::npos) << what;
    EXPECT_NE(what.find("instance 'w0'"), std::string::npos) << what;
    EXPECT_NE(what.find("weights (2.00 GB)"), std::string::npos) << what;
  }
  ModelSpec opaque;
  opaque.name = "opaque";
  opaque.params = 1e6;
  views.add_worker(testing::test_device(), opaque);
  EXPECT_THROW(derive_kv_blocks(views.instance(1), 16, 0.9, "b"), Error);
}

// What steady_decode_steps() promises, checked on copies: asked that many times (each plan carried
// out), the batcher decodes every running sequence once, in running order, and nothing else, and
// nothing completes before the last step; WorkerState::advance_decode() leaves the same state and
// completes the same sequences in the same order.
void expect_steady_steps_as_planned(const ContinuousBatcher& batcher, const WorkerState& state, std::int64_t steps,
                                    TimeUs now) {
  ContinuousBatcher asked = batcher;
  WorkerState stepped = state;
  std::vector<Finished> completed;
  for (std::int64_t k = 1; k <= steps; ++k) {
    BatchPlan plan = asked.next(stepped, now);
    ASSERT_EQ(entries(plan), entries(stepped.decode_all_plan())) << "step " << k << " of " << steps;
    ASSERT_TRUE(plan.preempt.empty() && plan.drop.empty()) << "step " << k;
    ASSERT_TRUE(stepped.begin(plan, now).empty());
    now += 10;
    completed = stepped.finish(plan, now);
    if (k < steps) { ASSERT_TRUE(completed.empty()) << "a completion before the last steady step"; }
  }
  WorkerState fast = state;
  std::vector<Finished> fast_completed = fast.advance_decode(steps);
  ASSERT_EQ(fast_completed.size(), completed.size());
  for (std::size_t i = 0; i < completed.size(); ++i) {
    EXPECT_EQ(fast_completed[i].seq.request.id, completed[i].seq.request.id);
    EXPECT_EQ(fast_completed[i].seq.generated, completed[i].seq.generated);
  }
  ASSERT_EQ(fast.running(), stepped.running());
  EXPECT_EQ(fast.kv().free(), stepped.kv().free());
  for (RequestId id : fast.running()) {
    EXPECT_EQ(fast.get(id).computed, stepped.get(id).computed);
    EXPECT_EQ(fast.get(id).generated, stepped.get(id).generated);
    EXPECT_EQ(fast.get(id).kv_blocks(), stepped.get(id).kv_blocks());
  }
}

TEST(ContinuousBatcherTest, SteadyStepsStopWhereTheCacheRunsOut) {
  Driver d(options(64, 4, /*kv_blocks=*/12, /*block_tokens=*/4));
  d.add(1, 8, 40);
  d.add(2, 8, 40);
  d.step();  // both prompts (2 blocks each) and their first tokens
  ASSERT_EQ(d.state.kv().free(), 8);
  EXPECT_EQ(d.state.decode_steps_to_completion(), 39);
  // Each sequence takes a block every 4 steps, both at once: 8 free blocks last 4 rounds of 4.
  const std::int64_t steady = d.batcher.steady_decode_steps(d.state);
  EXPECT_EQ(steady, 16);
  for (std::int64_t k = 0; k < steady; ++k) {
    BatchPlan plan = d.step();
    ASSERT_TRUE(plan.preempt.empty());
    ASSERT_EQ(plan.entries.size(), 2u);
  }
  EXPECT_EQ(d.batcher.steady_decode_steps(d.state), 0);
  EXPECT_EQ(d.step().preempt, std::vector<RequestId>{2}) << "the next step runs out of blocks";
  // Something waiting makes the batcher's plans unpredictable: no steady steps.
  Driver w(options(64, 4, 100, 4));
  w.add(1, 8, 100);
  w.step();
  w.add(2, 8, 100);
  EXPECT_EQ(w.batcher.steady_decode_steps(w.state), 0);
}

// A tiny driver over random requests: every request ends exactly once, no iteration exceeds the
// token budget, max_num_seqs or the KV cache, and all blocks come back.
class ContinuousEndToEnd : public ::testing::TestWithParam<std::tuple<QueueOrder, bool>> {};

TEST_P(ContinuousEndToEnd, EveryRequestEndsOnceWithinLimits) {
  ContinuousOptions o = options(512, 16, 300);
  o.order = std::get<0>(GetParam());
  o.chunked_prefill = std::get<1>(GetParam());
  ContinuousBatcher batcher(o);
  WorkerState state(batcher.kv_capacity());
  ASSERT_EQ(state.kv().total(), 300);
  testing::FakeCostModel cost;
  testing::ViewBuilder views;
  views.add_worker();

  std::mt19937_64 rng(7);
  std::vector<Request> requests;
  TimeUs t = 0;
  for (RequestId id = 0; id < 200; ++id) {
    t += static_cast<TimeUs>(rng() % 3000);
    int input = 1 + int(rng() % 500);
    if (id % 50 == 7) input = 6000;  // more than the whole cache: dropped
    requests.push_back(make_request(id, t, input, int(rng() % 300), "", int(rng() % 4)));
  }
  std::map<RequestId, Outcome> ended;
  std::size_t next_arrival = 0;
  TimeUs now = 0;
  int preemptions = 0;
  int iterations = 0;
  int steady_checks = 0;
  int kv_limited = 0;
  while (iterations < 200000) {
    while (next_arrival < requests.size() && requests[next_arrival].arrival_us <= now) {
      state.enqueue(requests[next_arrival], now);
      ++next_arrival;
    }
    if (const std::int64_t steady = batcher.steady_decode_steps(state); steady > 0) {
      ++steady_checks;
      kv_limited += steady < state.decode_steps_to_completion() ? 1 : 0;
      expect_steady_steps_as_planned(batcher, state, steady, now);
    }
    BatchPlan plan = batcher.next(state, now);
    for (const Finished& f : state.begin(plan, now)) {
      EXPECT_TRUE(ended.emplace(f.seq.request.id, f.outcome).second);
      EXPECT_EQ(f.seq.request.input_tokens, 6000);
    }
    preemptions += static_cast<int>(plan.preempt.size());
    std::int64_t held = 0;
    for (RequestId id : state.running()) held += state.get(id).kv_blocks();
    ASSERT_GE(state.kv().free(), 0);
    ASSERT_EQ(held + state.kv().free(), 300);
    if (plan.idle()) {
      const TimeUs arrival = next_arrival < requests.size() ? requests[next_arrival].arrival_us : kNever;
      const TimeUs wake = std::min(arrival, plan.wake_at_us);
      if (wake == kNever) break;
      ASSERT_GE(wake, now);
      now = wake;
      continue;
    }
    ++iterations;
    std::int64_t tokens = 0;
    for (const BatchEntry& e : plan.entries) tokens += e.prefill_tokens + (e.decode ? 1 : 0);
    ASSERT_LE(tokens, 512);
    ASSERT_LE(plan.entries.size(), 16u);
    ASSERT_LE(state.running().size(), 16u);
    now += state.plan_time_us(plan, cost, views.instance(0));
    for (const Finished& f : state.finish(plan, now)) {
      EXPECT_TRUE(ended.emplace(f.seq.request.id, f.outcome).second);
      EXPECT_EQ(f.seq.generated, f.seq.output_target());
      EXPECT_LE(f.seq.first_token_us, now);
    }
  }
  EXPECT_EQ(ended.size(), requests.size());
  int dropped = 0;
  for (const auto& kv : ended) dropped += kv.second == Outcome::kDropped ? 1 : 0;
  EXPECT_EQ(dropped, 4);  // ids 7, 57, 107, 157
  EXPECT_TRUE(state.empty());
  EXPECT_EQ(state.kv().free(), 300);
  EXPECT_GT(preemptions, 0) << "the scenario should exercise preemption";
  if (o.order == QueueOrder::kPriority) {
    EXPECT_EQ(steady_checks, 0) << "priority reorders the decodes: no steady steps";
  } else {
    EXPECT_GT(steady_checks, 100);
    // (Whole prompts fill the cache in bigger steps: there, admission runs it out of blocks first.)
    if (o.chunked_prefill) { EXPECT_GT(kv_limited, 0) << "the scenario should run out of blocks in steady steps"; }
  }
}

INSTANTIATE_TEST_SUITE_P(Orders, ContinuousEndToEnd,
                         ::testing::Combine(::testing::Values(QueueOrder::kFcfs, QueueOrder::kSjf,
                                                              QueueOrder::kPriority),
                                            ::testing::Bool()));

}  // namespace
}  // namespace twinfer
