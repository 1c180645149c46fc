#include "policies/cost/roofline_cost_model.h"

#include <cmath>

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::test_device;
using testing::test_model;

// test_device(): 100 TFLOPS, 1000 GB/s, efficiencies 1. test_model(): 1e9 params, 16 layers,
// hidden 2048, 2e9 weight bytes, 131072 KV bytes per token.
InstanceSpec make_instance(int tp = 1, DeviceProfile device = test_device(), ModelSpec model = test_model()) {
  InstanceSpec inst;
  inst.name = "w0";
  inst.host = "h";
  for (int g = 0; g < tp; ++g) inst.gpus.push_back(g);
  inst.device = device;
  inst.model = model;
  inst.gpu_link = LinkSpec{450, 1};
  return inst;
}

IterationShape prefill(std::int64_t tokens) {
  IterationShape s;
  s.prefill_tokens = tokens;
  s.prefill_attn_pairs = tokens * tokens;
  return s;
}

IterationShape decode(std::int64_t seqs, std::int64_t context_tokens) {
  IterationShape s;
  s.decode_seqs = seqs;
  s.decode_context_tokens = context_tokens;
  return s;
}

TEST(RooflineCostModelTest, PrefillIsComputeBound) {
  RooflineCostModel cost;
  // flops = 2e9 * 1000 + 4 * 16 * 2048 * 1e6 = 2.131072e12 -> 21310.72 us at 1e14 FLOP/s;
  // bytes = 2e9 + 131072 * 1000 = 2.131072e9 -> 2131.072 us. Plus 200 us overhead.
  EXPECT_NEAR(cost.iteration_seconds(make_instance(), prefill(1000)), 21510.72e-6, 1e-12);
  EXPECT_EQ(cost.iteration_time_us(make_instance(), prefill(1000)), 21511);
}

TEST(RooflineCostModelTest, DecodeIsMemoryBound) {
  RooflineCostModel cost;
  // bytes = 2e9 + 131072 * (8000 read + 8 written) = 3.049624576e9 -> 3049.624576 us;
  // flops = 2e9 * 8 + 131072 * 8000 = 1.7048576e10 -> 170.49 us. Plus 200 us.
  EXPECT_NEAR(cost.iteration_seconds(make_instance(), decode(8, 8000)), 3249.624576e-6, 1e-12);
  EXPECT_EQ(cost.iteration_time_us(make_instance(), decode(8, 8000)), 3250);
}

TEST(RooflineCostModelTest, ChunkedPrefillReadsItsPriorTokens) {
  RooflineCostModel::Options opts;
  opts.iteration_overhead_us = 0;
  RooflineCostModel cost(opts);
  IterationShape s;
  s.prefill_tokens = 10;
  s.prefill_prior_tokens = 20000;
  s.prefill_attn_pairs = 10 * 20010;
  // bytes = 2e9 + 131072 * (20000 + 10) = 4.62275072e9 -> 4622.75072 us; flops = 2e10 + 131072 * 200100
  // = 4.6227e10 -> 462.27 us.
  EXPECT_NEAR(cost.iteration_seconds(make_instance(), s), 4622.75072e-6, 1e-12);
}

TEST(RooflineCostModelTest, TensorParallelismSplitsWorkAndAddsAllReduces) {
  RooflineCostModel cost;
  // Compute 21310.72 / 2 = 10655.36 us. 32 all-reduces of 1000 * 2048 * 2 = 4.096e6 bytes, each
  // 2 * 1/2 * 4.096e6 / 450e9 s = 9.102222 us + 2 * 1 * 1 us latency: 32 * 11.102222 = 355.27111 us.
  EXPECT_NEAR(cost.iteration_seconds(make_instance(2), prefill(1000)), (10655.36 + 355.271111 + 200) * 1e-6, 1e-11);
  EXPECT_EQ(cost.iteration_time_us(make_instance(2), prefill(1000)), 11211);
}

TEST(RooflineCostModelTest, TensorParallelismOverFourGpus) {
  RooflineCostModel cost;
  // Memory 3049.624576 / 4 = 762.406144 us. 32 all-reduces of 8 * 2048 * 2 = 32768 bytes, each
  // 2 * 3/4 * 32768 / 450e9 s = 0.109227 us + 2 * 3 * 1 us: 32 * 6.109227 = 195.495253 us.
  EXPECT_NEAR(cost.iteration_seconds(make_instance(4), decode(8, 8000)), (762.406144 + 195.495253 + 200) * 1e-6,
              1e-11);
}

TEST(RooflineCostModelTest, OptionsOverrideEfficienciesAndOverhead) {
  RooflineCostModel::Options opts;
  opts.compute_efficiency = 0.5;
  opts.bandwidth_efficiency = 0.25;
  opts.iteration_overhead_us = 0;
  RooflineCostModel cost(opts);
  EXPECT_EQ(cost.iteration_time_us(make_instance(), prefill(1000)), 42621);  // 2 * 21310.72
  EXPECT_EQ(cost.iteration_time_us(make_instance(), decode(8, 8000)), 12198);  // 4 * 3049.624576
}

TEST(RooflineCostModelTest, DeviceEfficienciesApplyByDefault) {
  DeviceProfile slow = test_device();
  slow.compute_efficiency = 0.5;
  RooflineCostModel cost;
  EXPECT_EQ(cost.iteration_time_us(make_instance(1, slow), prefill(1000)), 42821);  // 42621.44 + 200
}

TEST(RooflineCostModelTest, TimesAreAtLeastOneMicrosecond) {
  RooflineCostModel::Options opts;
  opts.iteration_overhead_us = 0;
  RooflineCostModel cost(opts);
  ModelSpec tiny;
  tiny.name = "tiny";
  tiny.params = 10;
  tiny.weights_bytes = 20;
  EXPECT_EQ(cost.iteration_time_us(make_instance(1, test_device(), tiny), decode(1, 0)), 1);
}

// The step-by-step sum that batch_seconds computes in closed form: one prefill, then decode steps
// 1..T-1 in which every sequence attends over its input plus j tokens.
double explicit_batch_seconds(const RooflineCostModel& cost, const InstanceSpec& inst, std::int64_t batch,
                              std::int64_t input_per_seq, std::int64_t decoding_seqs, std::int64_t max_output) {
  IterationShape first;
  first.prefill_tokens = batch * input_per_seq;
  first.prefill_attn_pairs = batch * input_per_seq * input_per_seq;
  double total = cost.iteration_seconds(inst, first);
  for (std::int64_t j = 1; j < max_output; ++j) {
    total += cost.iteration_seconds(inst, decode(decoding_seqs, decoding_seqs * (input_per_seq + j)));
  }
  return total;
}

RequestBatchShape batch_shape(std::int64_t batch, std::int64_t input_per_seq, std::int64_t output_sum,
                              std::int64_t max_output) {
  RequestBatchShape s;
  s.batch_size = batch;
  s.input_tokens = batch * input_per_seq;
  s.max_input_tokens = input_per_seq;
  s.output_tokens = output_sum;
  s.max_output_tokens = max_output;
  return s;
}

TEST(RooflineCostModelTest, BatchClosedFormEqualsStepSumAcrossTheRooflineCrossover) {
  RooflineCostModel cost;
  const InstanceSpec inst = make_instance();
  // 128 sequences of 10 tokens: decode step 1 is compute-bound (2561.8 us of compute vs 2201.3 us of
  // memory traffic), step 99 memory-bound (2578.0 vs 3845.5): the sum crosses over.
  ASSERT_GT((2e9 * 128 + 131072.0 * 128 * 11) / 1e14, (2e9 + 131072.0 * 128 * 12) / 1e12);
  ASSERT_LT((2e9 * 128 + 131072.0 * 128 * 109) / 1e14, (2e9 + 131072.0 * 128 * 110) / 1e12);
  const double expected = explicit_batch_seconds(cost, inst, 128, 10, 128, 100);
  const RequestBatchShape shape = batch_shape(128, 10, 128 * 100, 100);
  EXPECT_NEAR(cost.batch_seconds(inst, shape), expected, 1e-9);
  EXPECT_EQ(cost.batch_time_us(inst, shape), std::llround(expected * 1e6));
}

TEST(RooflineCostModelTest, BatchClosedFormEqualsStepSumWithTensorParallelism) {
  RooflineCostModel cost;
  const InstanceSpec inst = make_instance(2);
  const double expected = explicit_batch_seconds(cost, inst, 4, 500, 4, 300);
  EXPECT_NEAR(cost.batch_seconds(inst, batch_shape(4, 500, 1200, 300)), expected, 1e-9);
}

TEST(RooflineCostModelTest, BatchClosedFormWhenComputeBoundThroughout) {
  RooflineCostModel cost;
  const InstanceSpec inst = make_instance();
  const double expected = explicit_batch_seconds(cost, inst, 512, 4, 512, 20);
  EXPECT_NEAR(cost.batch_seconds(inst, batch_shape(512, 4, 512 * 20, 20)), expected, 1e-9);
}

TEST(RooflineCostModelTest, BatchClosedFormWhenMemoryBoundFirstThenComputeBound) {
  RooflineCostModel cost;
  // A mixture-of-experts-like model: reads 2e9 bytes of weights but computes with 1e6 parameters,
  // with a small KV cache, on a device of 1e12 FLOP/s and 1e12 bytes/s. Attention compute grows
  // faster than KV traffic; they cross near step 3715 (4 * 131072 * (100 + j) = 2e9).
  ModelSpec moe = test_model();
  moe.params = 1e6;
  moe.kv_bytes_per_token = 1000;
  const InstanceSpec inst = make_instance(1, test_device("SLOW", 1, 1000), moe);
  const double expected = explicit_batch_seconds(cost, inst, 4, 100, 4, 6000);
  EXPECT_NEAR(cost.batch_seconds(inst, batch_shape(4, 100, 4 * 6000, 6000)), expected, 1e-8);
}

TEST(RooflineCostModelTest, BatchClosedFormWithParallelRooflineLines) {
  RooflineCostModel cost;
  // 4 * layers * hidden = kv_bytes_per_token and FLOP/s = bytes/s: both terms grow at the same rate.
  const InstanceSpec inst = make_instance(1, test_device("EVEN", 1, 1000));
  const double expected = explicit_batch_seconds(cost, inst, 3, 50, 3, 40);
  EXPECT_NEAR(cost.batch_seconds(inst, batch_shape(3, 50, 120, 40)), expected, 1e-9);
}

TEST(RooflineCostModelTest, BatchOfOneOutputTokenIsOnePrefill) {
  RooflineCostModel cost;
  const InstanceSpec inst = make_instance();
  EXPECT_EQ(request_work_us(cost, inst, 1000, 1), 21511);
  EXPECT_EQ(request_work_us(cost, inst, 1000, 0), 21511);  // non-generative: the forward pass only
}

TEST(RooflineCostModelTest, BatchOverheadIsAddedOnce) {
  RooflineCostModel::Options opts;
  opts.batch_overhead_us = 1000;
  RooflineCostModel with_overhead(opts);
  RooflineCostModel plain;
  const InstanceSpec inst = make_instance();
  const RequestBatchShape shape = batch_shape(4, 100, 40, 10);
  EXPECT_EQ(with_overhead.batch_time_us(inst, shape), plain.batch_time_us(inst, shape) + 1000);
}

TEST(RooflineCostModelTest, UnpaddedBatchDecodesOnlyTheAverageBatch) {
  RooflineCostModel::Options opts;
  opts.static_padding = false;
  RooflineCostModel unpadded(opts);
  RooflineCostModel padded;
  const InstanceSpec inst = make_instance();
  // Equal outputs: the same as padding.
  EXPECT_NEAR(unpadded.batch_seconds(inst, batch_shape(4, 100, 4 * 50, 50)),
              padded.batch_seconds(inst, batch_shape(4, 100, 4 * 50, 50)), 1e-12);
  // Outputs 100 and 1: one sequence decodes 99 steps alone, exactly the average batch of 1.
  const double expected = explicit_batch_seconds(unpadded, inst, 2, 100, 1, 100);
  EXPECT_NEAR(unpadded.batch_seconds(inst, batch_shape(2, 100, 101, 100)), expected, 1e-9);
  EXPECT_LT(unpadded.batch_seconds(inst, batch_shape(2, 100, 101, 100)),
            padded.batch_seconds(inst, batch_shape(2, 100, 101, 100)));
}

TEST(RooflineCostModelTest, OpaqueModelCostsItsWeightsOnly) {
  RooflineCostModel::Options opts;
  opts.iteration_overhead_us = 0;
  RooflineCostModel cost(opts);
  ModelSpec opaque;
  opaque.name = "cnn";
  opaque.params = 25e6;
  opaque.bytes_per_param = 4;  // layers = 0: no attention, no KV
  // Batch of 64 inputs: flops 2 * 25e6 * 64 = 3.2e9 -> 32 us; bytes 1e8 -> 100 us.
  EXPECT_EQ(cost.batch_time_us(make_instance(1, test_device(), opaque), batch_shape(64, 1, 0, 0)), 100);
  // Batch of 1000: 500 us of compute.
  EXPECT_EQ(cost.batch_time_us(make_instance(1, test_device(), opaque), batch_shape(1000, 1, 0, 0)), 500);
}

}  // namespace
}  // namespace twinfer
