#include "policies/servable.h"

#include <algorithm>
#include <cassert>

namespace twinfer {
namespace {

std::string model_text(const Request& request) {
  return request.model.empty() ? "any model" : "model '" + request.model + "'";
}

}  // namespace

std::int64_t peak_kv_tokens(const Request& request) {
  return std::int64_t(prompt_length(request)) + std::max<std::int32_t>(request.output_tokens, 1);
}

std::int64_t peak_kv_blocks(const Request& request, const KvBlocks& kv) {
  assert(kv.block_tokens() > 0);
  return kv.blocks_for(peak_kv_tokens(request));
}

std::string unservable_reason(const Request& request, const ClusterView& view) {
  bool served = false;
  std::int64_t largest_tokens = 0;
  for (const WorkerView& w : view.all()) {
    if (!w.serves(request.model)) continue;
    served = true;
    if (w.kv_block_tokens <= 0 || w.kv_blocks_total <= 0) return {};
    const KvBlocks kv(KvCapacity{w.kv_blocks_total, w.kv_block_tokens});
    if (peak_kv_blocks(request, kv) <= kv.total()) return {};
    largest_tokens = std::max(largest_tokens, kv.total() * kv.block_tokens());
  }
  if (!served) return "no worker serves " + model_text(request);
  return "needs " + std::to_string(peak_kv_tokens(request)) + " tokens of KV cache (input + output); the largest " +
         "KV cache for " + model_text(request) + " holds " + std::to_string(largest_tokens);
}

}  // namespace twinfer
