#include "runtime/engine/profiler.h"

#include <unistd.h>

#include <set>

#include <gtest/gtest.h>

#include "policies/cost/calibrated_cost_model.h"
#include "tests/runtime/runtime_testing.h"

namespace twinfer::runtime {
namespace {

// cpu_tiny with a short context and a small batcher, so that the probes take well under a second
// (and under a minute with the sanitizers).
RunConfig small_config() {
  return testing::cpu_tiny_config({"cluster.models.tiny-llm.max_context=64", "policies.batcher.max_num_seqs=4",
                                   "policies.batcher.max_num_batched_tokens=32"});
}

TEST(ProbeBurstsTest, CoverEveryBatchSizeUpToTheBatcherLimitAndContextsUpToTheModelMaximum) {
  RunConfig c = small_config();
  ProbeOptions opt;
  const auto bursts = probe_bursts(c, c.cluster.instances[0], opt);
  std::set<int> sizes, single_prompts;
  int longest = 0;
  for (const ProbeBurst& b : bursts) {
    if (!b.lengths.empty()) {
      EXPECT_EQ(b.lengths.size(), std::size_t(opt.mixed_requests));
      EXPECT_GT(b.gap_us, 0);
      for (const auto& [input, output] : b.lengths) EXPECT_LE(input + output, 64);
      continue;
    }
    sizes.insert(b.count);
    if (b.count == 1) single_prompts.insert(b.input_tokens);
    longest = std::max(longest, b.input_tokens + b.output_tokens);
    // Each burst fits the KV cache at once: 1024 blocks of 16 tokens.
    EXPECT_LE(std::int64_t(b.count) * (b.input_tokens + b.output_tokens), 1024 * 16);
  }
  EXPECT_LE(longest, 64);
  EXPECT_GE(longest, 64 - 16);
  EXPECT_EQ(sizes, (std::set<int>{1, 2, 4}));  // up to max_num_seqs 4 (and the warm-up's 4)
  EXPECT_GE(single_prompts.size(), 6u);           // one sequence at contexts across the range
  EXPECT_EQ(bursts.back().lengths.size(), std::size_t(opt.mixed_requests));
}

TEST(ProfilerTest, FitsTheEngineLoopsStepsIntoAFileTheCalibratedModelReads) {
  RunConfig c = small_config();
  ProbeOptions opt;
  opt.repeats = 2;
  opt.mixed_requests = 8;
  opt.decode_tokens = 4;
  opt.steps_dir = ::testing::TempDir() + "/profiler_steps";
  nlohmann::json table = profile_cost_model(c, opt);
  ASSERT_EQ(table["entries"].size(), 1u);  // two instances of one (device, model, tp)
  const auto& e = table["entries"][0];
  EXPECT_EQ(e["device"], "CPU");
  EXPECT_EQ(e["model"], "tiny-llm");
  EXPECT_GT(e["fit"]["train"]["steps"].get<int>(), 40);
  EXPECT_GT(e["fit"]["held_out"]["steps"].get<int>(), 10);
  EXPECT_GT(e["fit"]["contention_steps"].get<int>(), 0) << e["fit"].dump();  // the host's two instances at once
  EXPECT_GT(table["meta"]["engine"]["requests"].get<int>(), 0);  // the dispatch delay
  // The bursts run one after the other: the same shapes recur in every repeat.
  EXPECT_GT(e["fit"]["repeat_spread"]["shapes"].get<int>(), 10);
  EXPECT_EQ(::access((opt.steps_dir + "/cpu_cpu0/repeat2/steps.csv").c_str(), R_OK), 0);
  CalibratedCostModel model(table, "profile");
  IterationShape big, small;
  big.prefill_seqs = small.prefill_seqs = 1;
  big.prefill_tokens = big.prefill_attn_pairs = 32;
  big.prefill_attn_pairs *= 32;
  small.prefill_tokens = 2;
  small.prefill_attn_pairs = 4;
  const InstanceSpec& inst = c.cluster.instances[0];
  // 16x the tokens through the same weights: clearly more time, whatever the machine's noise.
  EXPECT_GT(model.iteration_time_us(inst, big), model.iteration_time_us(inst, small));
}

}  // namespace
}  // namespace twinfer::runtime
