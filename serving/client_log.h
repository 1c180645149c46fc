// Per-request measurements of a served workload, as a client saw them: what calibrating the
// simulator against an engine needs when its steps cannot be logged (another engine, or a
// deployment measured from outside).
#pragma once

#include <string>
#include <vector>

#include "serving/recorder.h"
#include "traces/trace.h"

namespace twinfer {

// A client log: the workload it sent, as a trace, and what came back, one record per request of
// the trace (same ids, same order). Records of completed requests carry arrival_us,
// first_token_us and end_us on the trace's clock.
struct ClientLog {
  std::string source;   // the file read
  std::string format;   // "vllm-bench" or "twinfer-requests"
  Trace trace;
  std::vector<RequestRecord> measured;
  int left_out = 0;     // requests in the file not in the trace (failed, without an output length)
};

// Reads a client log from `path`:
//   - a .json file that `vllm bench serve --save-result --save-detailed` wrote: the arrays
//     start_times (seconds, the client's clock when each request was sent), input_lens,
//     output_lens, ttfts and latencies (seconds), and errors (optional; "" for success). Arrivals
//     are the start times less the earliest; failed requests and those with no output token are
//     left out (counted in left_out): their intended output length is unknown.
//   - a twinfer requests.csv (of `twinfer run`, `serve`/`replay` or `sim`), or a run folder
//     holding one: every request, whatever its outcome.
// Throws twinfer::Error naming the file and the key or line of anything malformed.
ClientLog read_client_log(const std::string& path);

}  // namespace twinfer
