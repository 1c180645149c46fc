#include <algorithm>
#include <string>

#include "core/error.h"
#include "runtime/backend/backend.h"

namespace twinfer::runtime {
namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

std::int32_t token_of(std::uint64_t x, int vocab) {
  // Multiply-shift maps the top 32 bits onto [0, vocab) without a division.
  return static_cast<std::int32_t>(((x >> 32) * static_cast<std::uint64_t>(vocab)) >> 32);
}

void check_args(std::int32_t count, int vocab) {
  if (vocab <= 0) throw Error("prompt_tokens: vocab must be > 0, got " + std::to_string(vocab));
  if (count < 0) throw Error("prompt_tokens: count must not be negative, got " + std::to_string(count));
}

}  // namespace

// Token i of request `id` depends on (id, i) only, so a prefix of a longer prompt is the shorter
// prompt, and a recomputed (preempted) request sees the same tokens.
std::vector<std::int32_t> prompt_tokens(RequestId id, std::int32_t count, int vocab) {
  check_args(count, vocab);
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(count));
  const std::uint64_t request_key = splitmix64(id);
  for (std::int32_t i = 0; i < count; ++i) {
    tokens[static_cast<std::size_t>(i)] = token_of(splitmix64(request_key + static_cast<std::uint64_t>(i)), vocab);
  }
  return tokens;
}

// A prompt of token ids is those tokens. Otherwise token i in trace block k with a hash id depends
// on (the chain of ids up to k, i) only: the same in every request whose first k + 1 ids are these.
std::vector<std::int32_t> prompt_tokens(const Request& request, int vocab) {
  const BlockHashes& hashes = request.prefix;
  if (hashes.has_tokens()) {
    check_args(request.input_tokens, vocab);
    const std::vector<std::int32_t>& tokens = hashes.tokens();
    if (tokens.size() != static_cast<std::size_t>(request.input_tokens)) {
      throw Error("prompt_tokens: request " + std::to_string(request.id) + " has " + std::to_string(tokens.size()) +
                  " token ids for " + std::to_string(request.input_tokens) + " input tokens");
    }
    for (const std::int32_t t : tokens) {
      if (t < 0 || t >= vocab) {
        throw Error("prompt_tokens: request " + std::to_string(request.id) + ": token id " + std::to_string(t) +
                    " is outside the vocabulary of " + std::to_string(vocab) + " tokens");
      }
    }
    return tokens;
  }
  if (hashes.empty()) return prompt_tokens(request.id, request.input_tokens, vocab);
  check_args(request.input_tokens, vocab);
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(request.input_tokens));
  std::uint64_t chain = kPrefixChainSeed;
  const std::int64_t per_id = hashes.block_tokens();
  std::int64_t i = 0;
  for (std::size_t k = 0; k < hashes.size() && i < request.input_tokens; ++k) {
    chain = mix_hash(chain, hashes[k]);
    const std::int64_t end = std::min<std::int64_t>(std::int64_t(k + 1) * per_id, request.input_tokens);
    for (; i < end; ++i) tokens[static_cast<std::size_t>(i)] = token_of(splitmix64(chain + static_cast<std::uint64_t>(i)), vocab);
  }
  // Past the ids: the request's own tokens, as prompt_tokens(id, ...) gives them.
  const std::uint64_t request_key = splitmix64(request.id);
  for (; i < request.input_tokens; ++i) {
    tokens[static_cast<std::size_t>(i)] = token_of(splitmix64(request_key + static_cast<std::uint64_t>(i)), vocab);
  }
  return tokens;
}

}  // namespace twinfer::runtime
