#include "policies/worker_state.h"

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;

BatchPlan iteration(std::vector<BatchEntry> entries, std::vector<RequestId> preempt = {}) {
  BatchPlan plan;
  plan.kind = BatchKind::kIteration;
  plan.entries = std::move(entries);
  plan.preempt = std::move(preempt);
  return plan;
}

BatchEntry prefill(RequestId id, int tokens) { return BatchEntry{id, tokens, false}; }
BatchEntry decode(RequestId id) { return BatchEntry{id, 0, true}; }

std::vector<RequestId> ids(const std::deque<RequestId>& d) { return {d.begin(), d.end()}; }

TEST(KvBlocksTest, BlocksForRoundsUp) {
  KvBlocks kv(KvCapacity{10, 16});
  EXPECT_EQ(kv.blocks_for(0), 0);
  EXPECT_EQ(kv.blocks_for(1), 1);
  EXPECT_EQ(kv.blocks_for(16), 1);
  EXPECT_EQ(kv.blocks_for(17), 2);
  std::vector<KvBlocks::BlockId> taken;
  for (int i = 0; i < 4; ++i) taken.push_back(kv.allocate());
  EXPECT_EQ(kv.free(), 6);
  for (KvBlocks::BlockId b : taken) kv.release(b);
  EXPECT_EQ(kv.free(), 10);
}

TEST(KvBlocksTest, UntrackedHasNoBlocks) {
  KvBlocks kv;
  EXPECT_FALSE(kv.tracked());
  EXPECT_EQ(kv.free(), 0);
  EXPECT_EQ(kv.total(), 0);
}

// What begin() requires of a plan, checked for batchers that are not trusted to keep it.
TEST(WorkerStateTest, PlanErrorNamesWhatBeginWouldRefuse) {
  WorkerState state(KvCapacity{100, 16});
  state.enqueue(make_request(1, 0, 40, 3), 0);
  state.enqueue(make_request(2, 0, 40, 3), 0);
  const BatchPlan first = iteration({prefill(2, 16)});
  state.begin(first, 0);
  state.finish(first, 10);  // 2 runs with 24 tokens left to prefill; 1 waits
  EXPECT_EQ(state.plan_error(iteration({prefill(1, 16), prefill(2, 24)})), "");
  EXPECT_EQ(state.plan_error(iteration({prefill(7, 16)})), "batch entry 7 is not on this worker");
  EXPECT_EQ(state.plan_error(iteration({prefill(2, 25)})),
            "batch entry 2: prefill_tokens 25 past the 24 left to prefill");
  EXPECT_EQ(state.plan_error(iteration({decode(2)})), "batch entry 2: decode of a sequence that is not decoding");
  EXPECT_EQ(state.plan_error(iteration({BatchEntry{1, 0, false}})), "batch entry 1: neither prefills nor decodes");
  EXPECT_EQ(state.plan_error(iteration({BatchEntry{1, 4, true}})), "batch entry 1: an entry either prefills or decodes");
  EXPECT_EQ(state.plan_error(iteration({}, {1})), "preempted request 1 is not running");
  BatchPlan drop;
  drop.drop.push_back(BatchDrop{2, "no"});
  EXPECT_EQ(state.plan_error(drop), "dropped request 2 is not waiting");
  drop.drop[0].id = 1;
  EXPECT_EQ(state.plan_error(drop), "");
}

TEST(WorkerStateTest, ChunkedPrefillThenDecodeToCompletion) {
  WorkerState state(KvCapacity{100, 16});
  state.enqueue(make_request(1, 0, /*input=*/40, /*output=*/3), 5);
  EXPECT_EQ(state.get(1).enqueued_us, 5);
  EXPECT_EQ(state.get(1).prefill_target, 40);
  EXPECT_EQ(ids(state.waiting()), std::vector<RequestId>{1});

  BatchPlan p1 = iteration({prefill(1, 16)});
  EXPECT_TRUE(state.begin(p1, 10).empty());
  EXPECT_TRUE(state.waiting().empty());
  EXPECT_EQ(state.running(), std::vector<RequestId>{1});
  EXPECT_EQ(state.get(1).started_us, 10);
  EXPECT_EQ(state.get(1).kv_blocks(), 1);
  EXPECT_EQ(state.kv().free(), 99);
  IterationShape s1 = state.iteration_shape(p1);
  EXPECT_EQ(s1.prefill_tokens, 16);
  EXPECT_EQ(s1.prefill_prior_tokens, 0);
  EXPECT_EQ(s1.prefill_attn_pairs, 16 * 16);
  EXPECT_EQ(s1.decode_seqs, 0);
  EXPECT_TRUE(state.finish(p1, 20).empty());
  EXPECT_EQ(state.get(1).computed, 16);
  EXPECT_EQ(state.get(1).generated, 0);
  EXPECT_EQ(state.get(1).first_token_us, kNever);

  BatchPlan p2 = iteration({prefill(1, 20)});
  state.begin(p2, 20);
  EXPECT_EQ(state.get(1).kv_blocks(), 3);  // 36 tokens
  EXPECT_EQ(state.kv().free(), 97);
  IterationShape s2 = state.iteration_shape(p2);
  EXPECT_EQ(s2.prefill_tokens, 20);
  EXPECT_EQ(s2.prefill_prior_tokens, 16);
  EXPECT_EQ(s2.prefill_attn_pairs, 20 * 36);
  state.finish(p2, 30);
  EXPECT_EQ(state.get(1).computed, 36);
  EXPECT_EQ(state.get(1).generated, 0);
  EXPECT_TRUE(state.get(1).in_prefill());

  BatchPlan p3 = iteration({prefill(1, 4)});
  state.begin(p3, 30);
  EXPECT_EQ(state.get(1).kv_blocks(), 3);  // 40 tokens still fit 3 blocks
  EXPECT_TRUE(state.finish(p3, 40).empty());
  EXPECT_EQ(state.get(1).computed, 40);
  EXPECT_EQ(state.get(1).generated, 1);
  EXPECT_EQ(state.get(1).first_token_us, 40);
  EXPECT_FALSE(state.get(1).in_prefill());

  BatchPlan p4 = iteration({decode(1)});
  state.begin(p4, 40);
  IterationShape s4 = state.iteration_shape(p4);
  EXPECT_EQ(s4.prefill_tokens, 0);
  EXPECT_EQ(s4.decode_seqs, 1);
  EXPECT_EQ(s4.decode_context_tokens, 41);
  EXPECT_TRUE(state.finish(p4, 50).empty());
  EXPECT_EQ(state.get(1).computed, 41);
  EXPECT_EQ(state.get(1).generated, 2);
  EXPECT_EQ(state.get(1).first_token_us, 40);

  BatchPlan p5 = iteration({decode(1)});
  state.begin(p5, 50);
  std::vector<Finished> done = state.finish(p5, 60);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].outcome, Outcome::kCompleted);
  EXPECT_EQ(done[0].seq.request.id, 1u);
  EXPECT_EQ(done[0].seq.computed, 42);
  EXPECT_EQ(done[0].seq.generated, 3);
  EXPECT_EQ(done[0].seq.started_us, 10);
  EXPECT_EQ(done[0].seq.first_token_us, 40);
  EXPECT_EQ(done[0].seq.kv_blocks(), 0);
  EXPECT_EQ(state.kv().free(), 100);
  EXPECT_TRUE(state.empty());
}

TEST(WorkerStateTest, DecodeTakesANewBlockAtTheBoundary) {
  WorkerState state(KvCapacity{10, 16});
  state.enqueue(make_request(1, 0, 16, 5), 0);
  BatchPlan p = iteration({prefill(1, 16)});
  state.begin(p, 0);
  state.finish(p, 1);
  EXPECT_EQ(state.get(1).kv_blocks(), 1);
  BatchPlan d = iteration({decode(1)});
  state.begin(d, 1);
  EXPECT_EQ(state.get(1).kv_blocks(), 2);  // computed 16 + 1 token added this step
  EXPECT_EQ(state.kv().free(), 8);
}

TEST(WorkerStateTest, OutputOfZeroCompletesWithThePrefill) {
  WorkerState state(KvCapacity{10, 16});
  state.enqueue(make_request(1, 0, 20, 0), 0);
  BatchPlan p = iteration({prefill(1, 20)});
  state.begin(p, 0);
  std::vector<Finished> done = state.finish(p, 7);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].seq.generated, 1);
  EXPECT_EQ(done[0].seq.first_token_us, 7);
  EXPECT_EQ(state.kv().free(), 10);
}

TEST(WorkerStateTest, PreemptionFreesBlocksRequeuesAtFrontAndRecomputes) {
  WorkerState state(KvCapacity{10, 16});
  state.enqueue(make_request(1, 0, 32, 10), 0);
  state.enqueue(make_request(2, 0, 16, 10), 0);
  BatchPlan p1 = iteration({prefill(1, 32), prefill(2, 16)});
  state.begin(p1, 0);
  EXPECT_EQ(state.kv().free(), 7);
  state.finish(p1, 100);
  BatchPlan p2 = iteration({decode(1), decode(2)});
  state.begin(p2, 100);
  EXPECT_EQ(state.get(1).kv_blocks(), 3);
  EXPECT_EQ(state.get(2).kv_blocks(), 2);
  EXPECT_EQ(state.kv().free(), 5);
  state.finish(p2, 200);
  state.enqueue(make_request(3, 0, 16, 1), 200);

  BatchPlan p3 = iteration({decode(1)}, /*preempt=*/{2});
  state.begin(p3, 200);
  EXPECT_EQ(ids(state.waiting()), (std::vector<RequestId>{2, 3}));
  EXPECT_EQ(state.running(), std::vector<RequestId>{1});
  const Sequence& b = state.get(2);
  EXPECT_EQ(b.computed, 0);
  EXPECT_EQ(b.generated, 2);
  EXPECT_EQ(b.prefill_target, 18);  // 16 input + 2 generated
  EXPECT_EQ(b.preemptions, 1);
  EXPECT_EQ(b.kv_blocks(), 0);
  EXPECT_EQ(b.first_token_us, 100);
  EXPECT_EQ(state.kv().free(), 7);
  state.finish(p3, 300);

  BatchPlan p4 = iteration({decode(1), prefill(2, 18)});
  state.begin(p4, 300);
  EXPECT_EQ(ids(state.waiting()), std::vector<RequestId>{3});
  EXPECT_EQ(state.running(), (std::vector<RequestId>{1, 2}));
  EXPECT_EQ(state.get(2).kv_blocks(), 2);
  EXPECT_EQ(state.get(2).started_us, 0);  // first start is kept
  state.finish(p4, 400);
  EXPECT_EQ(state.get(2).computed, 18);
  EXPECT_EQ(state.get(2).generated, 3);  // the recompute produced the next token
  EXPECT_EQ(state.get(2).first_token_us, 100);
}

TEST(WorkerStateTest, CancelRemovesAWaitingOrRunningSequenceAndFreesItsBlocks) {
  WorkerState state(KvCapacity{10, 16});
  for (RequestId id = 1; id <= 4; ++id) state.enqueue(make_request(id, 0, 32, 10), 0);
  BatchPlan p = iteration({prefill(1, 32), prefill(2, 32)});
  state.begin(p, 0);
  state.finish(p, 100);
  EXPECT_EQ(state.kv().free(), 6);
  EXPECT_TRUE(state.cancel(2));  // running
  EXPECT_EQ(state.running(), std::vector<RequestId>{1});
  EXPECT_EQ(state.kv().free(), 8);
  EXPECT_TRUE(state.cancel(3));  // waiting, in the middle of nothing but the queue
  EXPECT_EQ(ids(state.waiting()), std::vector<RequestId>{4});
  EXPECT_FALSE(state.cancel(3));
  EXPECT_FALSE(state.cancel(99));
  // The rest runs on as before.
  BatchPlan q = iteration({decode(1), prefill(4, 32)});
  state.begin(q, 100);
  state.finish(q, 200);
  EXPECT_EQ(state.get(1).generated, 2);
  EXPECT_EQ(state.get(4).generated, 1);
  EXPECT_EQ(state.kv().free(), 5);
}

TEST(WorkerStateTest, ClearReturnsEverySequenceAndFreesTheWholeCache) {
  WorkerState state(KvCapacity{10, 16});
  for (RequestId id = 1; id <= 3; ++id) state.enqueue(make_request(id, 0, 32, 10), 0);
  BatchPlan p = iteration({prefill(1, 32)});
  state.begin(p, 0);
  state.finish(p, 100);
  auto lost = state.clear();
  ASSERT_EQ(lost.size(), 3u);
  EXPECT_EQ(lost[0].request.id, 2u);
  EXPECT_EQ(lost[1].request.id, 3u);
  EXPECT_EQ(lost[2].request.id, 1u);
  EXPECT_EQ(lost[2].generated, 1);
  EXPECT_TRUE(state.empty());
  EXPECT_EQ(state.kv().free(), 10);
  state.enqueue(make_request(1, 0, 32, 10), 200);  // the same id may come back (a retry)
  EXPECT_EQ(ids(state.waiting()), std::vector<RequestId>{1});
}

TEST(WorkerStateTest, SeveralPreemptionsKeepTheirPlanOrderAtTheFront) {
  WorkerState state(KvCapacity{100, 16});
  for (RequestId id = 1; id <= 4; ++id) state.enqueue(make_request(id, 0, 8, 5), 0);
  BatchPlan p = iteration({prefill(1, 8), prefill(2, 8), prefill(3, 8)});
  state.begin(p, 0);
  state.finish(p, 1);
  EXPECT_EQ(state.kv().free(), 97);
  BatchPlan q = iteration({decode(1)}, {3, 2});
  state.begin(q, 1);
  EXPECT_EQ(ids(state.waiting()), (std::vector<RequestId>{2, 3, 4}));
  EXPECT_EQ(state.kv().free(), 99);
}

TEST(WorkerStateTest, WaitingOrderSurvivesRemovalsAnywhere) {
  WorkerState state(KvCapacity{100, 16});
  for (RequestId id = 1; id <= 6; ++id) state.enqueue(make_request(id, 0, 8, 5), 0);
  auto start = [&](std::vector<RequestId> which) {
    std::vector<BatchEntry> e;
    for (RequestId id : which) e.push_back(prefill(id, 8));
    BatchPlan plan = iteration(e);
    state.begin(plan, 0);
    return plan;
  };
  start({4, 2});
  EXPECT_EQ(ids(state.waiting()), (std::vector<RequestId>{1, 3, 5, 6}));
  start({6});
  EXPECT_EQ(ids(state.waiting()), (std::vector<RequestId>{1, 3, 5}));
  start({1});
  EXPECT_EQ(ids(state.waiting()), (std::vector<RequestId>{3, 5}));
  EXPECT_EQ(state.running(), (std::vector<RequestId>{4, 2, 6, 1}));
  BatchPlan back = iteration({}, {2, 4});
  state.begin(back, 0);
  EXPECT_EQ(ids(state.waiting()), (std::vector<RequestId>{4, 2, 3, 5}));
  EXPECT_EQ(state.running(), (std::vector<RequestId>{6, 1}));
  start({2, 5});
  EXPECT_EQ(ids(state.waiting()), (std::vector<RequestId>{4, 3}));
}

TEST(WorkerStateTest, RemovalsNearEitherEndKeepTheOrder) {
  WorkerState state;
  for (RequestId id = 1; id <= 10; ++id) state.enqueue(make_request(id), 0);
  BatchPlan plan;
  plan.kind = BatchKind::kRequestBatch;
  plan.entries = {BatchEntry{3, 100, false}, BatchEntry{2, 100, false}, BatchEntry{5, 100, false}};
  state.begin(plan, 0);  // near the front
  EXPECT_EQ(ids(state.waiting()), (std::vector<RequestId>{1, 4, 6, 7, 8, 9, 10}));
  state.finish(plan, 1);
  plan.entries = {BatchEntry{9, 100, false}, BatchEntry{7, 100, false}};
  state.begin(plan, 1);  // near the back
  EXPECT_EQ(ids(state.waiting()), (std::vector<RequestId>{1, 4, 6, 8, 10}));
}

TEST(WorkerStateTest, DropsLeaveTheQueueWithTheirReason) {
  WorkerState state(KvCapacity{100, 16});
  for (RequestId id = 1; id <= 3; ++id) state.enqueue(make_request(id, 0, 8, 5), 0);
  BatchPlan plan = iteration({prefill(3, 8)});
  plan.drop.push_back(BatchDrop{2, "too big"});
  std::vector<Finished> dropped = state.begin(plan, 50);
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].seq.request.id, 2u);
  EXPECT_EQ(dropped[0].outcome, Outcome::kDropped);
  EXPECT_EQ(dropped[0].reason, "too big");
  EXPECT_EQ(ids(state.waiting()), std::vector<RequestId>{1});
  EXPECT_EQ(state.running(), std::vector<RequestId>{3});
}

class DropEven : public Admission {
 public:
  AdmissionDecision admit(const Request&, const ClusterView&) override { return AdmissionDecision::admit(); }
  std::optional<std::string> drop_before_start(const Request& r, TimeUs now_us) const override {
    if (r.id % 2 == 0) return "late at " + std::to_string(now_us);
    return std::nullopt;
  }
  bool may_drop_before_start() const override { return true; }
  std::string name() const override { return "drop_even"; }
};

TEST(WorkerStateTest, PurgeWaitingDropsWhatAdmissionSays) {
  WorkerState state;
  for (RequestId id = 1; id <= 5; ++id) state.enqueue(make_request(id), 0);
  DropEven admission;
  std::vector<Finished> dropped = state.purge_waiting(admission, 77);
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_EQ(dropped[0].seq.request.id, 2u);
  EXPECT_EQ(dropped[1].seq.request.id, 4u);
  EXPECT_EQ(dropped[1].reason, "late at 77");
  EXPECT_EQ(dropped[1].outcome, Outcome::kDropped);
  EXPECT_EQ(ids(state.waiting()), (std::vector<RequestId>{1, 3, 5}));
}

TEST(WorkerStateTest, RequestBatchCompletesEveryEntryAtItsEnd) {
  WorkerState state;  // request-level batchers do not track KV
  state.enqueue(make_request(1, 0, 100, 10), 0);
  state.enqueue(make_request(2, 0, 50, 0), 0);
  BatchPlan plan;
  plan.kind = BatchKind::kRequestBatch;
  plan.entries = {BatchEntry{1, 100, false}, BatchEntry{2, 50, false}};
  state.begin(plan, 100);
  RequestBatchShape shape = state.request_batch_shape(plan);
  EXPECT_EQ(shape.batch_size, 2);
  EXPECT_EQ(shape.input_tokens, 150);
  EXPECT_EQ(shape.max_input_tokens, 100);
  EXPECT_EQ(shape.output_tokens, 10);
  EXPECT_EQ(shape.max_output_tokens, 10);
  testing::FakeCostModel cost;
  testing::ViewBuilder b;
  b.add_worker();
  // 1000 + 10 * 150 input tokens + 100 * 10 output tokens, at peak 100 TFLOPS (scale 1).
  EXPECT_EQ(state.plan_time_us(plan, cost, b.instance(0)), 3500);
  plan.padded_input_tokens = 200;
  EXPECT_EQ(state.request_batch_shape(plan).input_tokens, 200);
  EXPECT_EQ(state.plan_time_us(plan, cost, b.instance(0)), 4000);

  std::vector<Finished> done = state.finish(plan, 4100);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].seq.request.id, 1u);
  EXPECT_EQ(done[0].seq.generated, 10);
  EXPECT_EQ(done[0].seq.first_token_us, 4100);
  EXPECT_EQ(done[0].seq.started_us, 100);
  EXPECT_EQ(done[1].seq.generated, 1);
  EXPECT_EQ(done[1].seq.first_token_us, 4100);
  EXPECT_TRUE(state.empty());
}

TEST(WorkerStateTest, MixedIterationShapeAndTime) {
  WorkerState state(KvCapacity{100, 16});
  state.enqueue(make_request(1, 0, 40, 10), 0);
  state.enqueue(make_request(2, 0, 26, 10), 0);
  BatchPlan p1 = iteration({prefill(1, 40), prefill(2, 16)});
  state.begin(p1, 0);
  state.finish(p1, 1);
  BatchPlan p2 = iteration({decode(1), prefill(2, 10)});
  state.begin(p2, 1);
  IterationShape s = state.iteration_shape(p2);
  EXPECT_EQ(s.prefill_tokens, 10);
  EXPECT_EQ(s.prefill_prior_tokens, 16);
  EXPECT_EQ(s.prefill_attn_pairs, 10 * 26);
  EXPECT_EQ(s.decode_seqs, 1);
  EXPECT_EQ(s.decode_context_tokens, 41);
  testing::FakeCostModel cost;
  testing::ViewBuilder b;
  b.add_worker(testing::test_device("HALF", 50));
  // (1000 + 10 * 10 prefill tokens + 100 * 1 decode) * 100 / 50 TFLOPS.
  EXPECT_EQ(state.plan_time_us(p2, cost, b.instance(0)), 2400);
  state.finish(p2, 2);
  EXPECT_EQ(state.get(2).generated, 1);
  EXPECT_EQ(state.get(1).generated, 2);
}

}  // namespace
}  // namespace twinfer
