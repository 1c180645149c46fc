// A backend executes the real model for one worker: one continuous-batching iteration at a time,
// or one request-level batch. CPU (Eigen) and CUDA (cuBLAS + own kernels) implement it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/request.h"
#include "policies/kv_transfers.h"
#include "runtime/model/transformer_config.h"

namespace twinfer::runtime {

// Thrown by Backend::step() when one sequence makes the step impossible (past max_context, a token
// outside the vocabulary, a block table that does not hold its tokens): nothing was changed, and
// the same step without that sequence may run.
class SequenceError : public Error {
 public:
  SequenceError(RequestId id, const std::string& what) : Error(what), id_(id) {}
  RequestId id() const { return id_; }

 private:
  RequestId id_;
};

// One sequence's part of an iteration. The worker's KvBlocks decides which pool blocks hold which
// sequence's keys and values (several sequences may share the blocks of a common prefix); the
// backend stores and reads them where the block table says.
struct StepSequence {
  RequestId id = 0;
  std::int32_t cached = 0;            // tokens of this sequence already in its blocks
  std::vector<std::int32_t> tokens;   // tokens to process now: a prefill chunk, or the last generated token
  // Its block table: the pool blocks holding positions [0, cached + tokens.size()), block_tokens
  // positions each, in order (trailing blocks it holds for later tokens may follow).
  std::vector<std::int32_t> blocks;
  bool sample = true;                 // produce the next token from the last position
};

// Capacity a backend allocates once, at construction: no allocation per request or per step.
struct BackendLimits {
  std::int64_t kv_blocks = 1024;      // paged KV cache size, in blocks
  int block_tokens = 16;
  int max_batch_tokens = 8192;        // most tokens in one iteration (activations workspace)
  int max_batch_sequences = 256;
  std::int64_t host_kv_blocks = 0;    // blocks of the host-memory tier (KvBlocks), 0: none
};

// Thread safety: one thread at a time (the worker's).
class Backend {
 public:
  virtual ~Backend() = default;

  // Runs one iteration: stores each sequence's new keys and values in its blocks at positions
  // cached.., attends each new token over positions [0, its own] and, for each sequence with
  // `sample`, writes the greedy next token to `next_tokens` (one per sampling sequence, in batch
  // order). Throws SequenceError when one sequence cannot run, and twinfer::Error when the step as
  // a whole exceeds a limit (the batcher's accounting should prevent both); either way before
  // changing any state.
  virtual void step(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next_tokens) = 0;

  // The logits of the last step's sampling sequences, [sampling sequences][vocab], for tests that
  // compare backends.
  virtual const std::vector<float>& last_logits() const = 0;

  // Request-level batch of a non-generative model: the transformer's blocks run bidirectionally
  // (no KV cache, no causal mask) over `lengths.size()` sequences padded to `padded_length` tokens
  // each (0: the longest). Returns one float per sequence (the mean of its final hidden state) so
  // that the work cannot be optimized away and backends can be compared.
  virtual std::vector<float> encode(const std::vector<std::int32_t>& lengths, std::int32_t padded_length) = 0;

  // With a host tier (BackendLimits::host_kv_blocks > 0): copies whole blocks' keys and values, every
  // store (pool block to host block) and then every load (host block to pool block), in order,
  // before the next step reads them. Throws twinfer::Error naming the copy when a block is outside
  // its pool, before copying anything.
  virtual void copy_kv(const KvTransfers& copies) = 0;

  virtual std::string name() const = 0;
};

// A request's prompt tokens: its own token ids when it came with them (BlockHashes::tokens; an id
// outside `vocab` or a count other than input_tokens throws). Otherwise deterministic tokens for a
// request of a trace that carries only token counts: those of a trace block with a hash id follow
// from the ids up to it (BlockHashes), so that requests sharing a prefix share its tokens; the rest
// follow from the request id.
std::vector<std::int32_t> prompt_tokens(const Request& request, int vocab);
// The tokens of a request `id` of `count` tokens without hash ids.
std::vector<std::int32_t> prompt_tokens(RequestId id, std::int32_t count, int vocab);

// "cpu" or "cuda:N". Throws twinfer::Error for an unknown device, or "cuda:N" without CUDA support
// in this build or without such a GPU.
std::unique_ptr<Backend> make_backend(const std::string& device, const TransformerConfig& config,
                                      const BackendLimits& limits);

}  // namespace twinfer::runtime
