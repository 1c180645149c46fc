#include "runtime/model/transformer_weights.h"

#include <cmath>
#include <random>

namespace twinfer::runtime {
namespace {

// Fills `count` values uniform in [-bound, bound) from the top 24 bits of each 64-bit draw: 2u - 1
// is exact in float for a 24-bit u, and the one multiplication by `bound` rounds the same way on
// every IEEE platform, so the weights are bit-identical everywhere.
std::vector<float> uniform(std::mt19937_64& rng, std::size_t count, int fan_in) {
  const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)));
  std::vector<float> out(count);
  for (float& w : out) {
    const float u = static_cast<float>(rng() >> 40) * 0x1.0p-24f;
    w = (2.0f * u - 1.0f) * bound;
  }
  return out;
}

std::vector<float> ones(int n) { return std::vector<float>(static_cast<std::size_t>(n), 1.0f); }

std::size_t size(int rows, int cols) { return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols); }

}  // namespace

// Fill order (one generator, seeded with config.seed): embedding; for each layer wq, wk, wv, wo,
// w_gate, w_up, w_down; lm_head. A matrix [in][out] is drawn row by row with fan_in = in; the
// embedding [vocab][hidden] uses fan_in = hidden. Norm weights are 1 and draw nothing.
TransformerWeights TransformerWeights::random(const TransformerConfig& config) {
  const int h = config.hidden, kv = config.kv_dim(), f = config.ffn_hidden;
  std::mt19937_64 rng(config.seed);
  TransformerWeights w;
  w.config = config;
  w.embedding = uniform(rng, size(config.vocab, h), h);
  w.layers.resize(static_cast<std::size_t>(config.layers));
  for (LayerWeights& layer : w.layers) {
    layer.attn_norm = ones(h);
    layer.wq = uniform(rng, size(h, h), h);
    layer.wk = uniform(rng, size(h, kv), h);
    layer.wv = uniform(rng, size(h, kv), h);
    layer.wo = uniform(rng, size(h, h), h);
    layer.mlp_norm = ones(h);
    layer.w_gate = uniform(rng, size(h, f), h);
    layer.w_up = uniform(rng, size(h, f), h);
    layer.w_down = uniform(rng, size(f, h), f);
  }
  w.final_norm = ones(h);
  w.lm_head = uniform(rng, size(h, config.vocab), h);
  return w;
}

}  // namespace twinfer::runtime
