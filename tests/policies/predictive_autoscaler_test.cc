#include "policies/autoscalers/predictive_autoscaler.h"

#include <vector>

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::FakeCostModel;

constexpr TimeUs kS = kUsPerS;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The fake's costs (iteration = 1000 us + 10 us per prefill token + 100 us per decoding sequence),
// recording every shape it is asked about.
class RecordingCostModel : public FakeCostModel {
 public:
  TimeUs iteration_time_us(const InstanceSpec& inst, const IterationShape& s) const override {
    shapes.push_back(s);
    return FakeCostModel::iteration_time_us(inst, s);
  }
  mutable std::vector<IterationShape> shapes;
};

InstanceSpec test_instance(double mem_gb = 80, int tp = 1) {
  InstanceSpec inst;
  inst.name = "w0";
  inst.device = testing::test_device("TEST", 100, 1000, mem_gb);
  inst.model = testing::test_model();
  for (int g = 0; g < tp; ++g) inst.gpus.push_back(g);
  return inst;
}

CapacityLimits limits(double tpot_ms = 0, int max_batch = 256) {
  CapacityLimits l;
  l.tpot_ms = tpot_ms;
  l.max_batch = max_batch;
  return l;
}

TEST(ReplicaCapacityTest, LargestBatchWithoutBounds) {
  FakeCostModel cost;
  auto c = replica_capacity(cost, test_instance(), 100, 10, limits());
  EXPECT_EQ(c.batch, 256);
  EXPECT_EQ(c.decode_iteration_us, 1000 + 100 * 256);
  EXPECT_EQ(c.prefill_us, 1000 + 10 * 100);
  // 256 / (10 * 26600 + 256 * 2000) per us
  EXPECT_NEAR(c.requests_per_s, 256e6 / 778000, 1e-9);
  EXPECT_TRUE(c.bounds_met);
}

TEST(ReplicaCapacityTest, TpotBoundsTheBatch) {
  FakeCostModel cost;
  auto c = replica_capacity(cost, test_instance(), 100, 10, limits(5));
  EXPECT_EQ(c.batch, 40);  // 1000 + 100 * 40 = 5000 us
  EXPECT_NEAR(c.requests_per_s, 40e6 / 130000, 1e-9);
}

TEST(ReplicaCapacityTest, KvCacheBoundsTheBatch) {
  FakeCostModel cost;
  // (2.5e9 * 0.9 - 2e9 weights) / (110 tokens * 131072 bytes) = 17.3
  auto c = replica_capacity(cost, test_instance(2.5), 100, 10, limits());
  EXPECT_EQ(c.batch, 17);
  EXPECT_NEAR(c.requests_per_s, 17e6 / (10 * 2700 + 17 * 2000), 1e-9);
  // Two GPUs: (5e9 * 0.9 - 2e9) / 14417920 = 173.4
  EXPECT_EQ(replica_capacity(cost, test_instance(2.5, 2), 100, 10, limits()).batch, 173);
}

TEST(ReplicaCapacityTest, OpaqueModelHasNoKvBound) {
  FakeCostModel cost;
  InstanceSpec inst = test_instance(2.5);
  inst.model.layers = 0;
  inst.model.kv_bytes_per_token = 0;
  EXPECT_EQ(replica_capacity(cost, inst, 100, 10, limits()).batch, 256);
}

TEST(ReplicaCapacityTest, UnreachableTpotFallsBackToOneSequence) {
  FakeCostModel cost;
  auto c = replica_capacity(cost, test_instance(), 100, 10, limits(1));  // t(1) = 1100 us
  EXPECT_EQ(c.batch, 1);
  EXPECT_FALSE(c.bounds_met);
  EXPECT_NEAR(c.requests_per_s, 1e6 / (10 * 1100 + 2000), 1e-9);
}

TEST(ReplicaCapacityTest, ALatencyBoundKeepsATailAnswerWithinIt) {
  FakeCostModel cost;
  CapacityLimits l = limits();
  l.latency_ms = 100;
  // Per generated token: t(B) + B * t_prefill / output = 1000 + 100 B + B * 2000 / 10 = 1000 + 300 B us.
  // 50 tokens: 50 * (1000 + 300 B) <= 100 ms -> B <= 3.
  auto tail = replica_capacity(cost, test_instance(), 100, 10, l, 50);
  EXPECT_EQ(tail.batch, 3);
  EXPECT_TRUE(tail.bounds_met);
  // The mean answer (10 tokens) alone: B <= 30.
  EXPECT_EQ(replica_capacity(cost, test_instance(), 100, 10, l).batch, 30);
  // A tail that no batch can meet.
  auto unmet = replica_capacity(cost, test_instance(), 100, 10, l, 200);
  EXPECT_EQ(unmet.batch, 1);
  EXPECT_FALSE(unmet.bounds_met);
}

TEST(ReplicaCapacityTest, AsksTheCostModelForDecodeAndPrefillShapes) {
  RecordingCostModel cost;
  replica_capacity(cost, test_instance(), 100, 10, limits(0, 40));
  ASSERT_GE(cost.shapes.size(), 2u);
  const IterationShape& prefill = cost.shapes.front();
  EXPECT_EQ(prefill.prefill_tokens, 100);
  EXPECT_EQ(prefill.prefill_attn_pairs, 100 * 100);
  EXPECT_EQ(prefill.decode_seqs, 0);
  const IterationShape& decode = cost.shapes.back();
  EXPECT_EQ(decode.decode_seqs, 40);
  EXPECT_EQ(decode.decode_context_tokens, 40 * (100 + 5));
  EXPECT_EQ(decode.prefill_tokens, 0);
}

class PredictiveAutoscalerTest : public ::testing::Test {
 protected:
  PoolSample arriving(TimeUs now_s, int ready, double rate_per_s, double input = 100, double output = 10) const {
    PoolSample s;
    s.now_us = now_s * kS;
    s.interval_us = interval_s * kS;
    s.ready = ready;
    s.min_replicas = 1;
    s.max_replicas = 100;
    s.arrivals = static_cast<std::int64_t>(rate_per_s * interval_s);
    s.mean_input_tokens = s.arrivals > 0 ? input : 0;
    s.mean_output_tokens = s.arrivals > 0 ? output : 0;
    s.cold_start_us = 20 * kS;
    s.instance = &instance;
    return s;
  }

  TimeUs interval_s = 10;
  InstanceSpec instance = test_instance();
  RecordingCostModel cost;
};

TEST_F(PredictiveAutoscalerTest, SizesThePoolFromTheCostModel) {
  PredictiveAutoscaler::Options o;
  o.limits.tpot_ms = 5;  // mu = 40e6 / 130000 = 307.7 req/s
  PredictiveAutoscaler a(o, cost);
  // ceil(1000 * 1.1 / (307.7 * 0.8)) = ceil(4.47)
  auto d = a.decide(arriving(0, 1, 1000));
  EXPECT_EQ(d.desired, 5);
  EXPECT_TRUE(contains(d.reason, "capacity 307.69 req/s per replica (batch 40)")) << d.reason;
  EXPECT_TRUE(contains(d.reason, "1 -> 5")) << d.reason;
  EXPECT_EQ(a.decide(arriving(10, 5, 1000)).desired, 5);
}

TEST_F(PredictiveAutoscalerTest, TheSloLatencyBoundsTheBatchForTheTailOfAnswers) {
  SloSpec slo;
  slo.ttft_ms = 20;
  slo.latency_ms = 120;
  nlohmann::json params = {{"name", "predictive"}};
  JsonParams p(params, "autoscaling.autoscaler (predictive)", {"name"});
  PredictiveAutoscaler::Options o = PredictiveAutoscaler::read_options(p, slo);
  EXPECT_DOUBLE_EQ(o.limits.latency_ms, 100);  // the latency after the first token
  nlohmann::json off = {{"latency_bound", false}};
  JsonParams q(off, "autoscaling.autoscaler (predictive)");
  EXPECT_DOUBLE_EQ(PredictiveAutoscaler::read_options(q, slo).limits.latency_ms, 0);

  // Same rate and mean shape; one pool's answers have a long tail (p95 50 tokens): B = 3
  // instead of 30, so more replicas: mu = 30e6 / (10 * 4000 + 30 * 2000) = 300 req/s, against
  // 3e6 / (10 * 1300 + 3 * 2000) = 157.9 req/s.
  PredictiveAutoscaler even(o, cost), tailed(o, cost);
  PoolSample s = arriving(0, 1, 1000);
  s.p95_output_tokens = 10;
  auto d_even = even.decide(s);
  s.p95_output_tokens = 50;
  auto d_tailed = tailed.decide(s);
  EXPECT_TRUE(contains(d_even.reason, "(batch 30, p95 answer 10 tokens)")) << d_even.reason;
  EXPECT_TRUE(contains(d_tailed.reason, "(batch 3, p95 answer 50 tokens)")) << d_tailed.reason;
  EXPECT_EQ(d_even.desired, 5);    // ceil(1000 * 1.1 / (300 * 0.8)) = ceil(4.58)
  EXPECT_EQ(d_tailed.desired, 9);  // ceil(1000 * 1.1 / (157.9 * 0.8)) = ceil(8.71)
}

TEST_F(PredictiveAutoscalerTest, TheErrorMarginAddsTheSmoothedForecastError) {
  PredictiveAutoscaler::Options o;
  o.limits.tpot_ms = 5;  // mu = 307.69 req/s
  o.forecast = "ewma";
  o.alpha = 0.5;
  o.headroom = 0;
  o.target_utilization = 1;
  PredictiveAutoscaler plain(o, cost);
  o.error_margin = 2;
  PredictiveAutoscaler margin(o, cost);
  // First: no error yet, ceil(1000 / 307.69) = 4 for both.
  EXPECT_EQ(plain.decide(arriving(0, 1, 1000)).desired, 4);
  EXPECT_EQ(margin.decide(arriving(0, 1, 1000)).desired, 4);
  // Then 2000 req/s: level 1500; error 0.5 * |2000 - 1000| = 500.
  EXPECT_EQ(plain.decide(arriving(10, 4, 2000)).desired, 5);  // ceil(1500 / 307.69)
  auto d = margin.decide(arriving(10, 4, 2000));
  EXPECT_EQ(d.desired, 9);  // ceil((1500 + 2 x 500) / 307.69)
  EXPECT_TRUE(contains(d.reason, "with 2.00 x error 500.00")) << d.reason;
}

TEST_F(PredictiveAutoscalerTest, HoltScalesUpARampBeforeEwma) {
  PredictiveAutoscaler::Options holt_options;
  PredictiveAutoscaler::Options ewma_options;
  ewma_options.forecast = "ewma";
  PredictiveAutoscaler holt(holt_options, cost);
  PredictiveAutoscaler ewma(ewma_options, cost);
  int holt_first = -1;
  int ewma_first = -1;
  for (int k = 0; k < 8; ++k) {
    const PoolSample s = arriving(k * interval_s, 1, 100.0 * (k + 1));
    const int h = holt.decide(s).desired;
    const int e = ewma.decide(s).desired;
    EXPECT_GE(h, e) << "k=" << k;
    if (h > 1 && holt_first < 0) holt_first = k;
    if (e > 1 && ewma_first < 0) ewma_first = k;
    // At k=1 Holt has level 200 and trend 100 per interval; 3 intervals ahead (20 s cold start
    // + 10 s): 500 req/s; ceil(500 * 1.1 / (329.05 * 0.8)) = ceil(2.09).
    if (k == 1) {
      EXPECT_EQ(h, 3);
    }
  }
  EXPECT_EQ(holt_first, 1);
  EXPECT_EQ(ewma_first, 3);  // EWMA level 312.5 at k=3: ceil(1.31)
}

TEST_F(PredictiveAutoscalerTest, FallingRateScalesDownOnlyAfterTheWindow) {
  PredictiveAutoscaler::Options o;
  o.forecast = "ewma";
  o.alpha = 1;  // forecast = last rate
  o.limits.tpot_ms = 5;
  PredictiveAutoscaler a(o, cost);
  interval_s = 30;
  for (TimeUs t = 0; t <= 150; t += 30) EXPECT_EQ(a.decide(arriving(t, 5, 1000)).desired, 5) << "t=" << t;
  // From t=180 the rate is 100 req/s (1 replica); the last 5 (t=150) leaves the 120 s window at 270.
  for (TimeUs t = 180; t <= 240; t += 30) EXPECT_EQ(a.decide(arriving(t, 5, 100)).desired, 5) << "t=" << t;
  EXPECT_EQ(a.decide(arriving(270, 5, 100)).desired, 1);
}

TEST_F(PredictiveAutoscalerTest, KeepsTheCurrentSizeUntilARequestShapeIsKnown) {
  PredictiveAutoscaler a(PredictiveAutoscaler::Options{}, cost);
  auto d = a.decide(arriving(0, 3, 0));
  EXPECT_EQ(d.desired, 3);
  EXPECT_TRUE(contains(d.reason, "shape unknown")) << d.reason;
  EXPECT_TRUE(cost.shapes.empty());
}

TEST_F(PredictiveAutoscalerTest, SmoothsTheShapeAndCachesCapacityPerShape) {
  PredictiveAutoscaler::Options o;
  o.shape_alpha = 0.5;
  PredictiveAutoscaler a(o, cost);
  a.decide(arriving(0, 1, 100, 100, 10));
  const std::size_t calls = cost.shapes.size();
  EXPECT_GT(calls, 0u);
  a.decide(arriving(10, 1, 300, 100, 10));
  a.decide(arriving(20, 1, 0));  // no arrivals: the last shape stays
  EXPECT_EQ(cost.shapes.size(), calls);
  // Shape (100 + 300) / 2 = 200 input tokens: 256 / (10 * 26600 + 256 * 3000) = 247.58 req/s.
  auto d = a.decide(arriving(30, 1, 100, 300, 10));
  EXPECT_GT(cost.shapes.size(), calls);
  EXPECT_TRUE(contains(d.reason, "capacity 247.58 req/s")) << d.reason;
}

TEST_F(PredictiveAutoscalerTest, ClampsToTheBounds) {
  PredictiveAutoscaler a(PredictiveAutoscaler::Options{}, cost);
  PoolSample s = arriving(0, 2, 100000);
  s.max_replicas = 8;
  EXPECT_EQ(a.decide(s).desired, 8);
}

}  // namespace
}  // namespace twinfer
