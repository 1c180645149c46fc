#include "runtime/cpu/cpu_kernels.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace twinfer::runtime::cpu {
namespace {

TEST(CpuKernelsTest, ArgmaxTakesTheLowestIndexOnTies) {
  const float x[] = {1, 3, 2, 3};
  EXPECT_EQ(argmax(x, 4), 1);
  const float y[] = {-5};
  EXPECT_EQ(argmax(y, 1), 0);
}

TEST(CpuKernelsTest, RmsNorm) {
  const float x[] = {3, 4};
  const float w[] = {1, 2};
  float out[2];
  rms_norm(x, w, 1, 2, 0.0f, out);  // rms = sqrt((9 + 16) / 2)
  EXPECT_NEAR(out[0], 3 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(out[1], 8 / std::sqrt(12.5), 1e-6);
}

TEST(CpuKernelsTest, SiluMul) {
  float gate[] = {0, 2};
  const float up[] = {5, 3};
  silu_mul(gate, up, 2);
  EXPECT_FLOAT_EQ(gate[0], 0);
  EXPECT_NEAR(gate[1], 2 / (1 + std::exp(-2.0)) * 3, 1e-6);
}

TEST(CpuKernelsTest, RotaryRotatesPairsByPositionTimesFrequency) {
  RotaryTable table(4, 4, 100.0f);  // pair 0 frequency 1, pair 1 frequency 100^(-1/2) = 0.1
  float x[] = {1, 0, 1, 0, /*second row*/ 1, 0, 0, 1};
  const std::int32_t positions[] = {0, 2};
  table.apply(x, 2, 4, 1, positions);
  EXPECT_FLOAT_EQ(x[0], 1);
  EXPECT_FLOAT_EQ(x[1], 0);
  EXPECT_NEAR(x[4], std::cos(2.0), 1e-6);
  EXPECT_NEAR(x[5], std::sin(2.0), 1e-6);
  EXPECT_NEAR(x[6], -std::sin(0.2), 1e-6);
  EXPECT_NEAR(x[7], std::cos(0.2), 1e-6);
}

// One head of dimension 2, three keys; values are the key index one-hot.
struct TinyAttention {
  AttentionShape shape{1, 1, 2};
  std::vector<float> keys = {1, 0, 0, 1, 1, 1};
  std::vector<float> values = {1, 0, 0, 1, 5, 5};
  std::vector<float> scores = std::vector<float>(kAttentionQueryTile * 3);
};

TEST(CpuKernelsTest, CausalQueriesSeeOnlyEarlierKeys) {
  TinyAttention a;
  const float q[] = {1, 1, 1, 1};  // queries at positions 0 and 1
  float out[4];
  const KvSegment all{a.keys.data(), a.values.data(), 0, 3};
  attend(a.shape, q, 2, 0, /*causal=*/true, 2, &all, 1, a.scores.data(), out);
  EXPECT_FLOAT_EQ(out[0], 1);  // only key 0
  EXPECT_FLOAT_EQ(out[1], 0);
  EXPECT_NEAR(out[2], 0.5, 1e-6);  // keys 0 and 1, equal scores
  EXPECT_NEAR(out[3], 0.5, 1e-6);
}

TEST(CpuKernelsTest, SoftmaxIsStableForHugeScoresAcrossSegments) {
  TinyAttention a;
  const float q[] = {1e4f, 1e4f};  // scores 1e4, 1e4, 2e4: exp would overflow without the shift
  float out[2];
  const KvSegment parts[] = {{a.keys.data(), a.values.data(), 0, 2}, {a.keys.data() + 4, a.values.data() + 4, 2, 1}};
  attend(a.shape, q, 1, 0, /*causal=*/false, 3, parts, 2, a.scores.data(), out);
  EXPECT_FLOAT_EQ(out[0], 5);
  EXPECT_FLOAT_EQ(out[1], 5);
}

}  // namespace
}  // namespace twinfer::runtime::cpu
