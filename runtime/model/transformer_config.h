// Sizes of the real decoder-only transformer that the runtime executes, from a config's model
// entry. Weights are seeded random numbers: nothing is downloaded.
#pragma once

#include <cstdint>
#include <string>

#include "core/cluster_config.h"

namespace twinfer::runtime {

// A Llama-style decoder: token embedding, `layers` blocks of (RMSNorm, grouped-query attention
// with rotary position embeddings, residual, RMSNorm, SwiGLU MLP, residual), final RMSNorm, and
// an output projection to `vocab` logits. Activations and weights are float32.
struct TransformerConfig {
  int layers = 2;
  int hidden = 256;
  int heads = 4;
  int kv_heads = 2;
  int ffn_hidden = 688;
  int vocab = 1024;
  int max_context = ModelSpec::kDefaultMaxContext;  // longest sequence (prompt + output) a backend accepts
  float rms_eps = 1e-5f;
  float rope_theta = 10000.f;
  std::uint64_t seed = 1;      // weights are a function of (sizes, seed) only

  int head_dim() const { return hidden / heads; }
  int kv_dim() const { return kv_heads * head_dim(); }
  // float32 K and V of one token over all layers.
  std::int64_t kv_bytes_per_token() const { return 2LL * layers * kv_dim() * 4; }
  // Multiply-accumulate count of one token through the weights (2 FLOPs each), attention aside.
  double weight_flops_per_token() const;

  // The model entry's layers/hidden/heads/kv_heads/ffn_hidden/vocab. Throws twinfer::Error naming
  // the model when a size is missing or inconsistent (hidden not divisible by heads, ...).
  static TransformerConfig from_model(const ModelSpec& model, std::uint64_t seed = 1);
};

}  // namespace twinfer::runtime
