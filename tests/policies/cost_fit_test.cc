#include "policies/cost/cost_fit.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "core/error.h"
#include "policies/cost/calibrated_cost_model.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

InstanceSpec cpu_instance() {
  InstanceSpec inst;
  inst.name = "cpu0";
  inst.host = "h";
  inst.gpus = {0};
  inst.device = testing::test_device();
  inst.model = testing::test_model();
  return inst;
}

// Steps of varied shapes timed by `truth`, with multiplicative noise of `noise` (relative sd).
std::vector<MeasuredStep> synthetic_steps(const StepCoefficients& truth, const ModelTerms& m, int n, double noise,
                                          std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> seqs(0, 64), chunk(0, 1024), context(1, 4096);
  std::normal_distribution<double> eps(0, noise);
  std::vector<MeasuredStep> steps;
  while (static_cast<int>(steps.size()) < n) {
    IterationShape s;
    s.decode_seqs = seqs(rng);
    for (std::int64_t i = 0; i < s.decode_seqs; ++i) s.decode_context_tokens += context(rng);
    if (rng() % 2) {
      s.prefill_seqs = 1;
      s.prefill_tokens = chunk(rng);
      s.prefill_prior_tokens = rng() % 2 ? context(rng) : 0;
      s.prefill_attn_pairs = s.prefill_tokens * (s.prefill_prior_tokens + s.prefill_tokens);
    }
    if (s.empty()) continue;
    const StepWork w = step_work(s);
    steps.push_back({w, step_seconds(truth, m, w) * std::max(0.5, 1 + eps(rng))});
  }
  return steps;
}

StepCoefficients truth_with_both_regimes() {
  StepCoefficients t;
  t.step_s = 80e-6;
  t.sequence_s = 4e-6;
  t.linear_s_per_flop = 1e-13;      // 10 TFLOP/s
  t.attention_s_per_flop = 4e-13;
  t.weights_s_per_byte = 1e-12;     // 1 TB/s: the 2 GB of weights take 2 ms, small batches are memory-bound
  t.kv_s_per_byte = 2e-12;
  return t;
}

TEST(NnlsTest, SolvesAnUnconstrainedProblemExactlyAndClampsANegativeOne) {
  // A = [[1, 0], [0, 1], [1, 1]], b = [1, 2, 3]: the least-squares solution (1, 2) is positive.
  std::vector<double> gram = {2, 1, 1, 2}, atb = {4, 5};
  auto x = nnls_normal(gram, atb, 2);
  EXPECT_NEAR(x[0], 1, 1e-9);
  EXPECT_NEAR(x[1], 2, 1e-9);
  // b = [1, -2, -1]: unconstrained (1, -2); with x >= 0 the second is 0 and the first 0 too
  // (min (x-1)^2 + 4 + (x+1)^2 at x = 0).
  atb = {0, -3};
  x = nnls_normal(gram, atb, 2);
  EXPECT_NEAR(x[0], 0, 1e-9);
  EXPECT_EQ(x[1], 0);
}

TEST(CostFitTest, RecoversTheCoefficientsOfNoiselessStepsInBothRegimes) {
  const InstanceSpec inst = cpu_instance();
  const ModelTerms m = ModelTerms::of(inst.model);
  const StepCoefficients truth = truth_with_both_regimes();
  auto steps = synthetic_steps(truth, m, 600, 0, 1);
  const FitResult fit = fit_step_coefficients(steps, inst);
  EXPECT_GT(fit.memory_bound, 0);
  EXPECT_LT(fit.memory_bound, fit.train.steps);
  EXPECT_LT(fit.held_out.mape, 1e-3);
  EXPECT_NEAR(fit.coefficients.linear_s_per_flop / truth.linear_s_per_flop, 1, 0.01);
  EXPECT_NEAR(fit.coefficients.attention_s_per_flop / truth.attention_s_per_flop, 1, 0.01);
  EXPECT_NEAR(fit.coefficients.kv_s_per_byte / truth.kv_s_per_byte, 1, 0.01);
  EXPECT_NEAR(fit.coefficients.sequence_s / truth.sequence_s, 1, 0.02);
  // Step overhead and weights read are one constant per step for one model: only their sum counts.
  EXPECT_NEAR(fit.coefficients.step_s + fit.coefficients.weights_s_per_byte * m.weights_bytes,
              truth.step_s + truth.weights_s_per_byte * m.weights_bytes, 1e-6);
}

TEST(CostFitTest, ReportsHeldOutErrorsOnNoisyStepsAndUnbiasesTheTotal) {
  const InstanceSpec inst = cpu_instance();
  const ModelTerms m = ModelTerms::of(inst.model);
  auto steps = synthetic_steps(truth_with_both_regimes(), m, 1000, 0.1, 2);
  const FitResult fit = fit_step_coefficients(steps, inst);
  EXPECT_EQ(fit.held_out.steps, 200);
  EXPECT_EQ(fit.train.steps, 800);
  EXPECT_NEAR(fit.train.total_error, 0, 1e-9);
  // 10% noise: each step's error is about the noise, the held-out total far smaller.
  EXPECT_GT(fit.held_out.mape, 0.04);
  EXPECT_LT(fit.held_out.mape, 0.15);
  EXPECT_LT(std::abs(fit.held_out.total_error), 0.03);
}

TEST(CostFitTest, FindsASpillTermWhenTheWorkingSetOutgrowsACache) {
  InstanceSpec inst = cpu_instance();
  inst.model.params = 3.4e6;  // a small model, weights 6.8 MB: its KV cache decides what fits
  inst.model.weights_bytes = 0;
  const ModelTerms m = ModelTerms::of(inst.model);
  StepCoefficients truth;
  truth.step_s = 300e-6;
  truth.sequence_s = 50e-6;
  truth.linear_s_per_flop = 6e-12;
  truth.attention_s_per_flop = 15e-12;
  truth.kv_s_per_byte = 20e-12;
  truth.spill_s_per_byte = 200e-12;
  truth.cache_bytes = 64.0 * (1 << 20);  // one of the candidate sizes
  auto steps = synthetic_steps(truth, m, 1500, 0, 5);
  const FitResult with = fit_step_coefficients(steps, inst);
  EXPECT_GT(with.coefficients.spill_s_per_byte, 0);
  EXPECT_GE(with.coefficients.cache_bytes, 32e6);
  EXPECT_LE(with.coefficients.cache_bytes, 128e6);
  EXPECT_LT(with.held_out.mape, 0.05);
}

TEST(CostFitTest, TellsASingleTokensMatrixVectorStepFromMatrixMatrixSteps) {
  const InstanceSpec inst = cpu_instance();
  const ModelTerms m = ModelTerms::of(inst.model);
  StepCoefficients truth = truth_with_both_regimes();
  truth.gemm_weights_s_per_byte = 0.5e-12;  // a step of two or more tokens reads the weights 1.5 times
  auto steps = synthetic_steps(truth, m, 600, 0, 7);
  for (int context : {10, 100, 1000, 3000}) {  // single sequences decoding: one token a step
    for (int k = 0; k < 10; ++k) {
      IterationShape s;
      s.decode_seqs = 1;
      s.decode_context_tokens = context + k;
      steps.push_back({step_work(s), step_seconds(truth, m, step_work(s))});
    }
  }
  const FitResult fit = fit_step_coefficients(steps, inst);
  EXPECT_NEAR(fit.coefficients.gemm_weights_s_per_byte / truth.gemm_weights_s_per_byte, 1, 0.02);
  EXPECT_LT(fit.held_out.mape, 1e-3);
}

TEST(CostFitTest, FitsTheContentionToStepsThatSharedTheirHost) {
  const InstanceSpec inst = cpu_instance();
  const ModelTerms m = ModelTerms::of(inst.model);
  const StepCoefficients truth = truth_with_both_regimes();
  auto steps = synthetic_steps(truth, m, 1200, 0, 6);
  for (std::size_t i = 0; i < steps.size(); i += 2) {  // every other step beside a busy neighbour
    steps[i].overlap = (i % 6 == 0) ? 1.0 : 0.5;
    steps[i].seconds *= 1 + 0.3 * steps[i].overlap;
  }
  const FitResult fit = fit_step_coefficients(steps, inst);
  EXPECT_NEAR(fit.coefficients.contention, 0.3, 0.01);
  EXPECT_GT(fit.contention_steps, 400);
  EXPECT_LT(fit.held_out.mape, 1e-3);  // errors count the contention of each step
  EXPECT_NEAR(fit.coefficients.linear_s_per_flop / truth.linear_s_per_flop, 1, 0.01);
}

TEST(CostFitTest, RefusesTooFewStepsNamingTheInstance) {
  const InstanceSpec inst = cpu_instance();
  auto steps = synthetic_steps(truth_with_both_regimes(), ModelTerms::of(inst.model), 6, 0, 3);
  try {
    fit_step_coefficients(steps, inst);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("instance 'cpu0' has"), std::string::npos) << e.what();
  }
}

TEST(CostFitTest, KeepsTensorParallelCommunicationFromTheLinkAndFitsTheRest) {
  InstanceSpec inst = cpu_instance();
  inst.gpus = {0, 1, 2, 3};
  inst.gpu_link = LinkSpec{100, 2};
  const ModelTerms m = ModelTerms::of(inst.model);
  StepCoefficients truth = truth_with_both_regimes();
  set_comm_terms(inst, truth);
  ASSERT_GT(truth.comm_s_per_token, 0);
  auto steps = synthetic_steps(truth, m, 400, 0, 4);
  const FitResult fit = fit_step_coefficients(steps, inst);
  EXPECT_DOUBLE_EQ(fit.coefficients.comm_s_per_token, truth.comm_s_per_token);
  EXPECT_DOUBLE_EQ(fit.coefficients.comm_s, truth.comm_s);
  EXPECT_LT(fit.held_out.mape, 1e-3);
}

TEST(CalibratedCostModelTest, ReadsItsFileAndPredictsAsTheStepModel) {
  const InstanceSpec inst = cpu_instance();
  StepCoefficients c = truth_with_both_regimes();
  nlohmann::json table = {{"format", "twinfer-cost-v1"},
                          {"entries", {{{"device", inst.device.name}, {"model", inst.model.name}, {"tp", 1},
                                        {"coefficients", coefficients_json(c)}, {"fit", {{"any", "thing"}}}}}}};
  CalibratedCostModel model(table, "cost.json");
  IterationShape s;
  s.decode_seqs = 8;
  s.decode_context_tokens = 8000;
  EXPECT_EQ(model.iteration_time_us(inst, s),
            round_step_us(step_seconds(c, ModelTerms::of(inst.model), step_work(s))));
  RequestBatchShape b;
  b.batch_size = 2;
  b.input_tokens = 200;
  b.max_input_tokens = 100;
  b.output_tokens = 20;
  b.max_output_tokens = 10;
  EXPECT_GT(model.batch_time_us(inst, b), 9 * model.iteration_time_us(inst, s) / 10);
}

TEST(CalibratedCostModelTest, NamesTheFileAndKeyOfABadTable) {
  auto error_of = [](const nlohmann::json& t) {
    try {
      CalibratedCostModel(t, "cost.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  nlohmann::json good = {{"format", "twinfer-cost-v1"},
                         {"entries", {{{"device", "D"}, {"model", "M"}, {"tp", 1},
                                       {"coefficients", coefficients_json(StepCoefficients())}}}}};
  EXPECT_EQ(error_of(good), "(no error)");
  auto bad = good;
  bad["entries"][0]["coefficients"]["kv_ps_per_byte"] = -1;
  EXPECT_NE(error_of(bad).find("cost.json: entries[0].coefficients.kv_ps_per_byte: must be"), std::string::npos)
      << error_of(bad);
  bad = good;
  bad["entries"][0]["coefficients"].erase("step_us");
  EXPECT_NE(error_of(bad).find("step_us"), std::string::npos) << error_of(bad);
  bad = good;
  bad["entries"][0]["coefficients"]["typo_us"] = 1;
  EXPECT_NE(error_of(bad).find("typo_us"), std::string::npos) << error_of(bad);
  bad = good;
  bad["format"] = "twinfer-profile-v1";
  EXPECT_NE(error_of(bad).find("format"), std::string::npos) << error_of(bad);
  bad = good;
  bad["entries"].push_back(good["entries"][0]);
  EXPECT_NE(error_of(bad).find("a second entry"), std::string::npos) << error_of(bad);

  CalibratedCostModel model(good, "cost.json");
  InstanceSpec other = cpu_instance();
  try {
    model.iteration_time_us(other, IterationShape{1, 1, 0, 1, 0, 0});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cost.json has no entry for device"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace twinfer
