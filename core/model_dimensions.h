// Sizes derived from a ModelSpec, shared by the config parser and the cost models.
#pragma once

#include "core/cluster_config.h"

namespace twinfer {

// Bytes of all weights: model.weights_bytes when set, else params * bytes_per_param.
inline double model_weights_bytes(const ModelSpec& model) {
  return model.weights_bytes > 0 ? model.weights_bytes : model.params * model.bytes_per_param;
}

// KV-cache bytes per token over all layers: model.kv_bytes_per_token when set, else
// 2 (K and V) * layers * kv_heads * head_dim * bytes_per_param, with head_dim = hidden / heads.
// 0 for an opaque model (layers == 0 or heads == 0).
inline double model_kv_bytes_per_token(const ModelSpec& model) {
  if (model.kv_bytes_per_token > 0) return model.kv_bytes_per_token;
  if (model.layers <= 0 || model.heads <= 0) return 0;
  const int kv_heads = model.kv_heads > 0 ? model.kv_heads : model.heads;
  const double head_dim = static_cast<double>(model.hidden) / model.heads;
  return 2.0 * model.layers * kv_heads * head_dim * model.bytes_per_param;
}

}  // namespace twinfer
