#include "runtime/engine/profiler.h"

#include <gtest/gtest.h>

#include "policies/cost/profile_cost_model.h"
#include "tests/runtime/runtime_testing.h"

namespace twinfer::runtime {
namespace {

TEST(Profiler, WritesATableTheProfileCostModelReads) {
  RunConfig c = testing::cpu_tiny_config();
  ProfileGrid grid;
  grid.prefill_tokens = {0, 32, 512};
  grid.decode_seqs = {0, 8};
  grid.decode_context_tokens = {0, 512};
  grid.batch_size = {1, 4};
  grid.input_tokens = {16, 256};
  grid.max_output_tokens = {1, 4};
  grid.repeats = 3;
  nlohmann::json table = profile_backends(c, "cpu", grid, false);
  ASSERT_EQ(table["entries"].size(), 1u);  // two instances of one (device, model, tp)
  const auto& e = table["entries"][0];
  EXPECT_EQ(e["device"], "CPU");
  EXPECT_EQ(e["model"], "tiny-llm");
  ProfileCostModel model(table, "profile");
  IterationShape big, small;
  big.prefill_tokens = 512;
  small.prefill_tokens = 32;
  const InstanceSpec& inst = c.cluster.instances[0];
  // 16x the tokens through the same weights: clearly more time, whatever the machine's noise.
  EXPECT_GT(model.iteration_time_us(inst, big), model.iteration_time_us(inst, small));
  RequestBatchShape b;
  b.batch_size = 4;
  b.input_tokens = 256;
  b.max_output_tokens = 4;
  EXPECT_GT(model.batch_time_us(inst, b), 0);
}

}  // namespace
}  // namespace twinfer::runtime
