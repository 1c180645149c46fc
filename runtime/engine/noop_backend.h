// A backend that does no math, for measuring the serving machinery (router, transport, worker
// engine bookkeeping) without the model's cost. It validates steps and accounts KV blocks exactly
// as the CPU backend does, so the batcher's and the engine's accounting are exercised as on a real
// backend; only the kernels are missing.
#pragma once

#include <memory>

#include "runtime/backend/backend.h"

namespace twinfer::runtime {

// step() returns token 0 for each sampling sequence and leaves last_logits() empty; encode()
// returns one 0 per sequence; name() is "noop". KV blocks: a sequence of L tokens holds
// ceil(L / block_tokens) blocks of a pool of limits.kv_blocks. Allocates no KV memory, so any
// pool size is cheap. Throws twinfer::Error on limits or model sizes <= 0.
std::unique_ptr<Backend> make_noop_backend(const TransformerConfig& config, const BackendLimits& limits);

}  // namespace twinfer::runtime
