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
// no tokens, a token outside the vocabulary, would pass max_context, or has a block table that
// does not hold its positions in the pool (too few blocks, or one outside [0, kv_blocks));
// twinfer::Error "<backend> backend step: ..." naming the limit when the step has too many
// sequences or tokens. Messages are built only on failure: a valid step allocates nothing here.
inline void check_step(const std::vector<StepSequence>& batch, const TransformerConfig& config,
                       const BackendLimits& limits, const char* backend) {
  auto fail = [backend](RequestId id, const std::string& what) {
    throw SequenceError(id, std::string(backend) + " backend step: sequence " + std::to_string(id) + " " + what);
  };
  const auto where = [backend] { return std::string(backend) + " backend step: "; };
  if (static_cast<std::int64_t>(batch.size()) > limits.max_batch_sequences)
    throw Error(where() + std::to_string(batch.size()) + " sequences exceed max_batch_sequences " +
                std::to_string(limits.max_batch_sequences));
  std::int64_t tokens = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const StepSequence& s = batch[i];
    for (std::size_t j = 0; j < i; ++j)
      if (batch[j].id == s.id) fail(s.id, "appears twice in one step");
    if (s.tokens.empty()) fail(s.id, "has no tokens to process");
    for (std::int32_t token : s.tokens)
      if (token < 0 || token >= config.vocab)
        fail(s.id, "has token " + std::to_string(token) + " outside [0, " + std::to_string(config.vocab) + ")");
    if (s.cached < 0) fail(s.id, "says cached = " + std::to_string(s.cached));
    const std::int64_t length = static_cast<std::int64_t>(s.cached) + static_cast<std::int64_t>(s.tokens.size());
    if (length > config.max_context)
      fail(s.id, "would reach " + std::to_string(length) + " tokens, over max_context " +
                     std::to_string(config.max_context));
    const std::int64_t needed = (length + limits.block_tokens - 1) / limits.block_tokens;
    if (static_cast<std::int64_t>(s.blocks.size()) < needed)
      fail(s.id, "has " + std::to_string(s.blocks.size()) + " blocks for " + std::to_string(length) +
                     " tokens, which need " + std::to_string(needed));
    for (std::int64_t b = 0; b < needed; ++b) {
      const std::int32_t block = s.blocks[static_cast<std::size_t>(b)];
      if (block < 0 || block >= limits.kv_blocks)
        fail(s.id, "has block " + std::to_string(block) + " outside the pool's [0, " +
                       std::to_string(limits.kv_blocks) + ")");
    }
    tokens += static_cast<std::int64_t>(s.tokens.size());
  }
  if (tokens > limits.max_batch_tokens)
    throw Error(where() + std::to_string(tokens) + " tokens exceed max_batch_tokens " +
                std::to_string(limits.max_batch_tokens));
}

// Throws twinfer::Error "<backend> backend copy_kv: ..." naming the first copy with a block outside
// the pool or the host tier.
inline void check_copies(const KvTransfers& copies, const BackendLimits& limits, const char* backend) {
  const auto check = [&](const std::vector<KvCopy>& list, const char* what) {
    for (std::size_t i = 0; i < list.size(); ++i) {
      const KvCopy& c = list[i];
      if (c.block < 0 || c.block >= limits.kv_blocks || c.host_block < 0 || c.host_block >= limits.host_kv_blocks) {
        throw Error(std::string(backend) + " backend copy_kv: " + what + " " + std::to_string(i) + " (block " +
                    std::to_string(c.block) + ", host block " + std::to_string(c.host_block) +
                    ") is outside the pool's [0, " + std::to_string(limits.kv_blocks) + ") or the host tier's [0, " +
                    std::to_string(limits.host_kv_blocks) + ")");
      }
    }
  };
  check(copies.stores, "store");
  check(copies.loads, "load");
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
