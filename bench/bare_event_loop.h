// The limit a simulator can reach: the same policies (admission, router, batcher, worker state,
// cost model) driven by a plain priority queue of events, with no SimGrid and no network. The
// simulator's speed is quoted as a ratio to this loop on the same workload.
#pragma once

#include <cstdint>

#include "serving/run_config.h"
#include "traces/trace.h"

namespace twinfer::bench {

struct BareLoopResult {
  std::int64_t completed = 0;
  std::int64_t ended = 0;     // completed + rejected + dropped
  std::int64_t events = 0;
  double wall_s = 0;
  double mean_latency_ms = 0;
};

BareLoopResult run_bare_event_loop(const RunConfig& config, const Trace& trace, std::uint64_t seed);

}  // namespace twinfer::bench
