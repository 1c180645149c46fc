// `twinfer replay`: an open-loop load generator for a router (or a single worker's twin, any
// service twinfer.rpc.Router). Each request leaves at its trace time whatever the earlier ones
// are doing; every answer is collected, and the run is written through the Recorder into the same
// summary.json, requests.csv and timeline.json as `twinfer sim`.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/rpc/transport_security.h"
#include "serving/recorder.h"
#include "core/request.h"
#include "serving/run_config.h"
#include "traces/trace.h"

namespace twinfer::runtime {

struct ReplayOptions {
  double rate_scale = 1.0;          // 2 replays the trace twice as fast
  int connect_timeout_ms = 10000;   // wait this long for the target before the first request
  int request_timeout_ms = 600000;  // a request unanswered this long ends as dropped
  bool fetch_batches = true;        // ask the target for its workers' batches (timeline.json)
  TransportSecurity security;       // TLS to the target (ca_file) and the token every call carries
};

// How one request ended. Times are microseconds since the replay's start (its trace time zero);
// -1 when it never happened.
struct ReplayedRequest {
  RequestId id = 0;
  Outcome outcome = Outcome::kDropped;
  std::string reason;
  int worker = -1;  // -1: it reached no worker
  TimeUs start_us = -1;
  TimeUs first_token_us = -1;
  TimeUs end_us = -1;
  int preemptions = 0;
  std::int32_t cached_tokens = -1;  // prompt tokens found in the prefix cache; -1: never started
  std::int32_t block_tokens = 0;    // KV block size of the worker where it started; 0: untracked
  int attempts = 0;  // as the router reports it (0 when it never answered)
};

struct ReplayRun {
  Trace trace;                           // as replayed (rate-scaled)
  std::vector<ReplayedRequest> results;  // one per request, by id
  std::vector<BatchRecord> batches;      // times since the replay's start, by start time
  std::vector<std::string> batch_errors; // workers whose batches could not be fetched
  std::string target;
  double wall_s = 0;
};

// Replays `trace` (ids 0..n-1) against `target` (HOST:PORT) in real time and returns once every
// request has ended (answered, failed, or timed out). A call that fails UNAVAILABLE (the router is
// down or restarting) ends rejected "router unavailable"; RESOURCE_EXHAUSTED (too large for the
// router) rejected "request too large: ..."; any other failure dropped "rpc CODE: message". Throws twinfer::Error when the target does not
// accept a connection within connect_timeout_ms.
ReplayRun replay_trace(const Trace& trace, const std::string& target, const ReplayOptions& options);

// The Recorder's summary of a replay (plus "run": {wall_s, target, rate_scale}), written with
// requests.csv, timeline.json (if `timeline`) and steps.csv (if `steps`) into `out_dir` unless it is empty. `workers` names the workers by
// index (empty: "w0", "w1", ... as many as the results mention); requests dropped before reaching
// any worker are booked on an extra worker named "(none)". Throws twinfer::Error when a result
// names a worker beyond `workers`.
nlohmann::json record_replay(const ReplayRun& run, std::vector<std::string> workers, const SloSpec& slo,
                             double rate_scale, const std::string& out_dir, bool timeline = true,
                             bool steps = false);

}  // namespace twinfer::runtime
