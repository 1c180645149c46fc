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

}  // namespace

// Token i of request `id` depends on (id, i) only, so a prefix of a longer prompt is the shorter
// prompt, and a recomputed (preempted) request sees the same tokens.
std::vector<std::int32_t> prompt_tokens(RequestId id, std::int32_t count, int vocab) {
  if (vocab <= 0) throw Error("prompt_tokens: vocab must be > 0, got " + std::to_string(vocab));
  if (count < 0) throw Error("prompt_tokens: count must not be negative, got " + std::to_string(count));
  std::vector<std::int32_t> tokens(static_cast<std::size_t>(count));
  const std::uint64_t request_key = splitmix64(id);
  for (std::int32_t i = 0; i < count; ++i) {
    const std::uint64_t x = splitmix64(request_key + static_cast<std::uint64_t>(i));
    // Multiply-shift maps the top 32 bits onto [0, vocab) without a division.
    tokens[static_cast<std::size_t>(i)] =
        static_cast<std::int32_t>(((x >> 32) * static_cast<std::uint64_t>(vocab)) >> 32);
  }
  return tokens;
}

}  // namespace twinfer::runtime
