// One inference request and how it ended.
#pragma once

#include <cstdint>

#include "core/block_hashes.h"
#include "core/shared_string.h"
#include "core/time.h"

namespace twinfer {

using RequestId = std::uint64_t;

// One request of a trace. Tokens count prompt (input) and generated (output) tokens; a request of a
// non-LLM model uses input_tokens as its size and output_tokens = 0 or 1.
// The numbers come first: a worker's every step reads the token counts, rarely the names.
struct Request {
  RequestId id = 0;
  TimeUs arrival_us = 0;      // offset from the start of the trace
  TimeUs deadline_us = kNever;  // absolute time by which it must complete; kNever if none
  std::int32_t input_tokens = 0;
  std::int32_t output_tokens = 0;
  int priority = 0;           // higher is more important; 0 is the default class
  SharedString model;         // empty: any model (every worker may serve it)
  SharedString session;       // affinity key for session-aware routing; may be empty
  BlockHashes prefix;         // the prompt's block hash ids, when the trace gives them
};
static_assert(sizeof(Request) <= 64, "one Request per request of a trace: keep it small");

// How a request ended. Every request ends exactly once with one of these.
// kRejected: refused before reaching a worker (admission, routing, limits, nothing can serve it).
// kDropped: lost after admission (a worker or link failed, retries exhausted, deadline passed).
// kTimedOut: the request's own time limit (protection.request_timeout_ms) ran out first.
enum class Outcome : std::uint8_t { kCompleted, kRejected, kDropped, kTimedOut };
inline constexpr int kOutcomeCount = 4;

inline const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kCompleted: return "completed";
    case Outcome::kRejected: return "rejected";
    case Outcome::kDropped: return "dropped";
    case Outcome::kTimedOut: return "timed_out";
  }
  return "unknown";
}

}  // namespace twinfer
