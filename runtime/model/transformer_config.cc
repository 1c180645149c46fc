#include "runtime/model/transformer_config.h"

#include "core/error.h"

namespace twinfer::runtime {
namespace {

void require(bool ok, const ModelSpec& model, const std::string& what) {
  if (!ok) throw Error("model '" + model.name + "': " + what + " (the runtime needs a complete decoder shape)");
}

}  // namespace

double TransformerConfig::weight_flops_per_token() const {
  const double h = hidden, kv = kv_dim(), f = ffn_hidden;
  const double per_layer = h * h * 2 + h * kv * 2 + h * f * 3;  // q, o; k, v; gate, up, down
  return 2.0 * (layers * per_layer + h * vocab);
}

// ffn_hidden = 0 means 4 * hidden, as everywhere else in the project (ModelSpec's contract, which
// the config parser applies too), so the runtime and the simulator's cost model see one shape.
TransformerConfig TransformerConfig::from_model(const ModelSpec& model, std::uint64_t seed) {
  require(model.layers > 0, model, "layers must be > 0, got " + std::to_string(model.layers));
  require(model.hidden > 0, model, "hidden must be > 0, got " + std::to_string(model.hidden));
  require(model.heads > 0, model, "heads must be > 0, got " + std::to_string(model.heads));
  require(model.hidden % model.heads == 0, model,
          "hidden " + std::to_string(model.hidden) + " is not divisible by heads " + std::to_string(model.heads));
  const int kv_heads = model.kv_heads == 0 ? model.heads : model.kv_heads;
  require(kv_heads > 0 && model.heads % kv_heads == 0, model,
          "heads " + std::to_string(model.heads) + " is not a multiple of kv_heads " + std::to_string(kv_heads));
  const int head_dim = model.hidden / model.heads;
  require(head_dim % 2 == 0, model,
          "head dimension hidden/heads = " + std::to_string(head_dim) + " must be even (rotary embeddings rotate pairs)");
  require(model.ffn_hidden >= 0, model, "ffn_hidden must not be negative, got " + std::to_string(model.ffn_hidden));
  require(model.vocab > 0, model, "vocab must be > 0, got " + std::to_string(model.vocab));

  TransformerConfig c;
  c.layers = model.layers;
  c.hidden = model.hidden;
  c.heads = model.heads;
  c.kv_heads = kv_heads;
  c.ffn_hidden = model.ffn_hidden == 0 ? 4 * model.hidden : model.ffn_hidden;
  c.vocab = model.vocab;
  c.max_context = model.max_context;
  c.seed = seed;
  return c;
}

}  // namespace twinfer::runtime
