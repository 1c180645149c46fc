// Whether any worker of a cluster could ever serve a request, and the KV-cache arithmetic behind it
// (shared with the continuous batcher, so that both judge "never fits" the same way).
#pragma once

#include <cstdint>
#include <string>

#include "policies/cluster_view.h"
#include "core/request.h"
#include "policies/worker_state.h"

namespace twinfer {

// KV-cache tokens `request` holds at its peak: its prompt (at least one token, the start token) plus
// its output (at least one token).
std::int64_t peak_kv_tokens(const Request& request);

// KV blocks of `kv` that `request` holds at its peak. REQUIRES: kv.block_tokens() > 0.
std::int64_t peak_kv_blocks(const Request& request, const KvBlocks& kv);

// "" when some worker serving request.model could ever hold the request: its model's max_context
// and its KV cache both hold the request's prompt plus output (health is ignored: a down worker may
// come back). Otherwise why not:
//   "no worker serves model 'x'", or
//   "prompt token id N is outside the vocabulary of model 'x' (V tokens)" when the prompt's token ids
//     (BlockHashes::tokens) hold an id no serving worker's model has, or
//   "needs N tokens of context (input + output); the longest context of model 'x' is M (max_context)"
//     when no serving worker's model holds N tokens, or
//   "needs N tokens of KV cache (input + output); the largest KV cache for model 'x' holds M".
// A worker with kv_block_tokens or kv_blocks_total 0 does not track KV and holds any request that
// fits its context.
std::string unservable_reason(const Request& request, const ClusterView& view);

}  // namespace twinfer
