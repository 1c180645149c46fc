#include "runtime/model/transformer_config.h"

#include <string>

#include <gtest/gtest.h>

#include "core/error.h"

namespace twinfer::runtime {
namespace {

ModelSpec tiny_model() {
  ModelSpec m;
  m.name = "tiny";
  m.layers = 2;
  m.hidden = 64;
  m.heads = 4;
  m.kv_heads = 2;
  m.ffn_hidden = 128;
  m.vocab = 97;
  return m;
}

std::string error_of(const ModelSpec& m) {
  try {
    TransformerConfig::from_model(m);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(TransformerConfigTest, CopiesTheSizesAndSeed) {
  const TransformerConfig c = TransformerConfig::from_model(tiny_model(), 7);
  EXPECT_EQ(c.layers, 2);
  EXPECT_EQ(c.hidden, 64);
  EXPECT_EQ(c.heads, 4);
  EXPECT_EQ(c.kv_heads, 2);
  EXPECT_EQ(c.ffn_hidden, 128);
  EXPECT_EQ(c.vocab, 97);
  EXPECT_EQ(c.seed, 7u);
  EXPECT_EQ(c.head_dim(), 16);
  EXPECT_EQ(c.kv_dim(), 32);
  EXPECT_EQ(c.kv_bytes_per_token(), 2 * 2 * 32 * 4);
}

TEST(TransformerConfigTest, ZeroKvHeadsAndFfnTakeTheModelSpecDefaults) {
  ModelSpec m = tiny_model();
  m.kv_heads = 0;
  m.ffn_hidden = 0;
  const TransformerConfig c = TransformerConfig::from_model(m);
  EXPECT_EQ(c.kv_heads, 4);
  EXPECT_EQ(c.ffn_hidden, 256);  // 4 * hidden
}

TEST(TransformerConfigTest, WeightFlopsPerToken) {
  // Per layer: q, o 64x64 each; k, v 64x32 each; gate, up, down 64x128 each; then lm_head 64x97.
  const double macs = 2 * (2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128) + 64 * 97;
  EXPECT_DOUBLE_EQ(TransformerConfig::from_model(tiny_model()).weight_flops_per_token(), 2 * macs);
}

TEST(TransformerConfigTest, RejectsMissingOrInconsistentSizesNamingTheModel) {
  ModelSpec m = tiny_model();
  m.layers = 0;
  EXPECT_NE(error_of(m).find("model 'tiny': layers must be > 0"), std::string::npos) << error_of(m);
  m = tiny_model();
  m.hidden = 66;
  EXPECT_NE(error_of(m).find("not divisible by heads"), std::string::npos) << error_of(m);
  m = tiny_model();
  m.kv_heads = 3;
  EXPECT_NE(error_of(m).find("not a multiple of kv_heads 3"), std::string::npos) << error_of(m);
  m = tiny_model();
  m.hidden = 12;  // head dimension 3
  EXPECT_NE(error_of(m).find("must be even"), std::string::npos) << error_of(m);
  m = tiny_model();
  m.heads = 0;
  EXPECT_NE(error_of(m).find("heads must be > 0"), std::string::npos) << error_of(m);
  m = tiny_model();
  m.vocab = 0;
  EXPECT_NE(error_of(m).find("vocab must be > 0"), std::string::npos) << error_of(m);
  m = tiny_model();
  m.ffn_hidden = -1;
  EXPECT_NE(error_of(m).find("ffn_hidden"), std::string::npos) << error_of(m);
}

}  // namespace
}  // namespace twinfer::runtime
