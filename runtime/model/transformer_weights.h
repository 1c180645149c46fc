// Seeded random weights of a TransformerConfig, in host memory. The CPU backend uses them in
// place; the CUDA backend copies them to the device once. Same seed, same weights, bit for bit.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/model/transformer_config.h"

namespace twinfer::runtime {

// Row-major float32 matrices. A linear layer y = x W stores W as [in][out].
struct LayerWeights {
  std::vector<float> attn_norm;  // [hidden]
  std::vector<float> wq;         // [hidden][hidden]
  std::vector<float> wk;         // [hidden][kv_dim]
  std::vector<float> wv;         // [hidden][kv_dim]
  std::vector<float> wo;         // [hidden][hidden]
  std::vector<float> mlp_norm;   // [hidden]
  std::vector<float> w_gate;     // [hidden][ffn_hidden]
  std::vector<float> w_up;       // [hidden][ffn_hidden]
  std::vector<float> w_down;     // [ffn_hidden][hidden]
};

struct TransformerWeights {
  TransformerConfig config;
  std::vector<float> embedding;  // [vocab][hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;  // [hidden]
  std::vector<float> lm_head;     // [hidden][vocab]

  // Uniform in +-1/sqrt(fan_in) from a seeded mt19937_64; norms are 1.
  static TransformerWeights random(const TransformerConfig& config);
};

}  // namespace twinfer::runtime
