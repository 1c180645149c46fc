// The checks every backend makes on a step before changing any state, so that a plan one backend
// rejects is rejected by all, with the same messages.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/backend/backend.h"

namespace twinfer::runtime {

// Throws SequenceError "<backend> backend step: sequence N ..." when one sequence appears twice, has
// no tokens, a token outside the vocabulary, a `cached` count that differs from held(id), or would
// pass max_context; twinfer::Error "<backend> backend step: ..." naming the limit when the step has
// too many sequences or tokens, or needs more KV blocks than `free_blocks`. held(id): tokens the backend holds for id;
// blocks_needed(id, n): new blocks that appending n tokens to id takes. Messages are built only on
// failure: a valid step allocates nothing here.
template <class Held, class BlocksNeeded>
void check_step(const std::vector<StepSequence>& batch, const TransformerConfig& config, const BackendLimits& limits,
                std::int64_t free_blocks, const char* backend, Held held, BlocksNeeded blocks_needed) {
  auto fail = [backend](RequestId id, const std::string& what) {
    throw SequenceError(id, std::string(backend) + " backend step: sequence " + std::to_string(id) + " " + what);
  };
  const auto where = [backend] { return std::string(backend) + " backend step: "; };
  if (static_cast<std::int64_t>(batch.size()) > limits.max_batch_sequences)
    throw Error(where() + std::to_string(batch.size()) + " sequences exceed max_batch_sequences " +
                std::to_string(limits.max_batch_sequences));
  std::int64_t tokens = 0, blocks = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const StepSequence& s = batch[i];
    for (std::size_t j = 0; j < i; ++j)
      if (batch[j].id == s.id) fail(s.id, "appears twice in one step");
    if (s.tokens.empty()) fail(s.id, "has no tokens to process");
    for (std::int32_t token : s.tokens)
      if (token < 0 || token >= config.vocab)
        fail(s.id, "has token " + std::to_string(token) + " outside [0, " + std::to_string(config.vocab) + ")");
    const std::int32_t have = held(s.id);
    if (s.cached != have)
      fail(s.id, "says cached = " + std::to_string(s.cached) + " but the KV cache holds " + std::to_string(have) +
                     " tokens");
    const std::int64_t length = static_cast<std::int64_t>(have) + static_cast<std::int64_t>(s.tokens.size());
    if (length > config.max_context)
      fail(s.id, "would reach " + std::to_string(length) + " tokens, over max_context " +
                     std::to_string(config.max_context));
    tokens += static_cast<std::int64_t>(s.tokens.size());
    blocks += blocks_needed(s.id, static_cast<std::int32_t>(s.tokens.size()));
  }
  if (tokens > limits.max_batch_tokens)
    throw Error(where() + std::to_string(tokens) + " tokens exceed max_batch_tokens " +
                std::to_string(limits.max_batch_tokens));
  if (blocks > free_blocks)
    throw Error(where() + "KV cache pool exhausted: the step needs " + std::to_string(blocks) + " blocks, " +
                std::to_string(free_blocks) + " of " + std::to_string(limits.kv_blocks) + " are free");
}

// The checks every backend makes on an encode() call before any work, so that all reject the same
// batches with the same messages. Returns the padded length: `padded_length`, or the longest length
// when it is 0 (0 for no sequences). Throws twinfer::Error "<backend> backend encode: ..." when a
// length is not positive or exceeds the padded length, the padded length exceeds max_context, or
// the batch exceeds max_batch_sequences or max_batch_tokens.
inline std::int32_t check_encode(const std::vector<std::int32_t>& lengths, std::int32_t padded_length,
                                 const TransformerConfig& config, const BackendLimits& limits, const std::string& backend) {
  if (lengths.empty()) return 0;
  const std::string where = backend + " backend encode: ";
  const std::int32_t longest = *std::max_element(lengths.begin(), lengths.end());
  const std::int32_t padded = padded_length == 0 ? longest : padded_length;
  const std::int64_t n = static_cast<std::int64_t>(lengths.size());
  if (*std::min_element(lengths.begin(), lengths.end()) <= 0) throw Error(where + "every length must be > 0");
  if (longest > padded)
    throw Error(where + "length " + std::to_string(longest) + " exceeds padded_length " + std::to_string(padded));
  if (padded > config.max_context)
    throw Error(where + "padded length " + std::to_string(padded) + " exceeds max_context " +
                std::to_string(config.max_context));
  if (n > limits.max_batch_sequences)
    throw Error(where + std::to_string(n) + " sequences exceed max_batch_sequences " +
                std::to_string(limits.max_batch_sequences));
  if (n * padded > limits.max_batch_tokens)
    throw Error(where + std::to_string(n) + " x " + std::to_string(padded) + " tokens exceed max_batch_tokens " +
                std::to_string(limits.max_batch_tokens));
  return padded;
}

}  // namespace twinfer::runtime
