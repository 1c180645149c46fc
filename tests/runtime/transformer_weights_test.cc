#include "runtime/model/transformer_weights.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

namespace twinfer::runtime {
namespace {

TransformerConfig tiny_config(std::uint64_t seed) {
  TransformerConfig c;
  c.layers = 2;
  c.hidden = 64;
  c.heads = 4;
  c.kv_heads = 2;
  c.ffn_hidden = 128;
  c.vocab = 97;
  c.seed = seed;
  return c;
}

float expected_weight(std::uint64_t draw, int fan_in) {
  return (2.0f * static_cast<float>(draw >> 40) * 0x1.0p-24f - 1.0f) * static_cast<float>(1.0 / std::sqrt(fan_in));
}

TEST(TransformerWeightsTest, ShapesAndUnitNorms) {
  const TransformerWeights w = TransformerWeights::random(tiny_config(1));
  EXPECT_EQ(w.embedding.size(), 97u * 64);
  ASSERT_EQ(w.layers.size(), 2u);
  for (const LayerWeights& l : w.layers) {
    EXPECT_EQ(l.wq.size(), 64u * 64);
    EXPECT_EQ(l.wk.size(), 64u * 32);
    EXPECT_EQ(l.wv.size(), 64u * 32);
    EXPECT_EQ(l.wo.size(), 64u * 64);
    EXPECT_EQ(l.w_gate.size(), 64u * 128);
    EXPECT_EQ(l.w_up.size(), 64u * 128);
    EXPECT_EQ(l.w_down.size(), 128u * 64);
    EXPECT_EQ(l.attn_norm, std::vector<float>(64, 1.0f));
    EXPECT_EQ(l.mlp_norm, std::vector<float>(64, 1.0f));
  }
  EXPECT_EQ(w.final_norm, std::vector<float>(64, 1.0f));
  EXPECT_EQ(w.lm_head.size(), 64u * 97);
}

TEST(TransformerWeightsTest, DrawsInTheDocumentedOrderFromTheTop24Bits) {
  const TransformerWeights w = TransformerWeights::random(tiny_config(5));
  std::mt19937_64 rng(5);
  EXPECT_EQ(w.embedding[0], expected_weight(rng(), 64));
  EXPECT_EQ(w.embedding[1], expected_weight(rng(), 64));
  rng.discard(97 * 64 - 2);
  EXPECT_EQ(w.layers[0].wq[0], expected_weight(rng(), 64));
  rng.discard(64 * 64 - 1 + 2 * 64 * 32 + 64 * 64 + 2 * 64 * 128);
  EXPECT_EQ(w.layers[0].w_down[0], expected_weight(rng(), 128));
}

TEST(TransformerWeightsTest, UniformWithinOneOverSqrtFanIn) {
  const TransformerWeights w = TransformerWeights::random(tiny_config(1));
  auto max_abs = [](const std::vector<float>& v) {
    float m = 0;
    for (float x : v) m = std::max(m, std::abs(x));
    return m;
  };
  EXPECT_LE(max_abs(w.layers[0].wq), 0.125f);
  EXPECT_GT(max_abs(w.layers[0].wq), 0.12f);  // 4096 draws reach the edge
  EXPECT_LE(max_abs(w.layers[1].w_down), 1 / std::sqrt(128.0f));
  EXPECT_GT(max_abs(w.layers[1].w_down), 0.95f / std::sqrt(128.0f));
  double sum = 0;
  for (float x : w.layers[0].w_gate) sum += x;
  EXPECT_NEAR(sum / w.layers[0].w_gate.size(), 0.0, 0.005);  // sd of the mean: 0.125/sqrt(3*8192)
}

TEST(TransformerWeightsTest, SameSeedSameWeightsOtherSeedOthers) {
  const TransformerWeights a = TransformerWeights::random(tiny_config(1));
  const TransformerWeights b = TransformerWeights::random(tiny_config(1));
  const TransformerWeights c = TransformerWeights::random(tiny_config(2));
  EXPECT_EQ(a.embedding, b.embedding);
  EXPECT_EQ(a.layers[1].w_down, b.layers[1].w_down);
  EXPECT_EQ(a.lm_head, b.lm_head);
  EXPECT_NE(a.embedding, c.embedding);
  EXPECT_NE(a.lm_head, c.lm_head);
}

}  // namespace
}  // namespace twinfer::runtime
