#include "policies/servable.h"

#include <algorithm>
#include <cassert>

namespace twinfer {
namespace {

std::string model_text(const Request& request) {
  return request.model.empty() ? "any model" : "model '" + request.model.str() + "'";
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
  // A model starts from at least one prompt token (a chat template's first token, BOS): a request
  // without any, which traces may hold, is refused here by every engine rather than sent.
  if (request.input_tokens < 1) {
    return "a prompt of " + std::to_string(request.input_tokens) + " tokens: a request needs at least one prompt token";
  }
  const std::int64_t tokens = peak_kv_tokens(request);
  // A prompt of token ids runs only on a model whose vocabulary holds its largest id.
  std::int64_t largest_token = -1;
  if (request.prefix.has_tokens()) {
    for (const std::int32_t t : request.prefix.tokens()) largest_token = std::max<std::int64_t>(largest_token, t);
  }
  std::int64_t largest_vocab = -1;  // of the serving workers' models
  bool served = false;
  std::int64_t longest_context = 0;  // of the serving workers' models
  std::int64_t largest_kv_tokens = -1;  // of the serving workers whose context holds the request
  for (const WorkerView& w : view.all()) {
    if (!w.serves(request.model)) continue;
    served = true;
    largest_vocab = std::max<std::int64_t>(largest_vocab, w.instance->model.vocab);
    if (largest_token >= w.instance->model.vocab) continue;
    const std::int64_t context = w.instance->model.max_context;
    longest_context = std::max(longest_context, context);
    if (tokens > context) continue;
    if (w.kv_block_tokens <= 0 || w.kv_blocks_total <= 0) return {};
    const KvBlocks kv(KvCapacity{w.kv_blocks_total, w.kv_block_tokens});
    if (peak_kv_blocks(request, kv) <= kv.total()) return {};
    largest_kv_tokens = std::max(largest_kv_tokens, kv.total() * kv.block_tokens());
  }
  if (!served) return "no worker serves " + model_text(request);
  if (largest_token >= largest_vocab) {
    return "prompt token id " + std::to_string(largest_token) + " is outside the vocabulary of " + model_text(request) +
           " (" + std::to_string(largest_vocab) + " tokens)";
  }
  if (largest_kv_tokens < 0) {
    return "needs " + std::to_string(tokens) + " tokens of context (input + output); the longest context of " +
           model_text(request) + " is " + std::to_string(longest_context) + " (max_context)";
  }
  return "needs " + std::to_string(tokens) + " tokens of KV cache (input + output); the largest KV cache for " +
         model_text(request) + " holds " + std::to_string(largest_kv_tokens);
}

}  // namespace twinfer
