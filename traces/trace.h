// Workloads: a trace is the list of requests a run replays.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/request.h"

namespace twinfer {

// Requests sorted by arrival_us (stable), with ids 0..n-1 in that order, arrival of the first at
// its own offset (readers of absolute timestamps make the first arrival 0).
struct Trace {
  std::vector<Request> requests;
  std::string source;  // file it was read from, or a description of how it was made
};

// Trace formats. `auto` picks by extension and header line (see trace_reader.cc).
//   native_csv   arrival_s,input_tokens,output_tokens[,model,priority,deadline_ms,session]
//   native_jsonl one object a line with the same keys
//   azure        Azure LLM inference trace 2023: TIMESTAMP,ContextTokens,GeneratedTokens
//   burstgpt     BurstGPT: Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
//   mooncake     Mooncake JSONL: {"timestamp": ms, "input_length", "output_length", "hash_ids"}
// Throws twinfer::Error naming file:line and the field on any malformed line; never returns a
// half-read trace.
Trace read_trace(const std::string& path, const std::string& format = "auto");

// Streams the trace at `path`: calls on_request for each request in file order, reading
// `block_bytes` of the file at a time, so that memory stays small whatever the trace's size.
// Requests come as the file has them: ids unset, not sorted, absolute clocks not moved to start
// at 0. Returns the format's name. Throws as read_trace() does (the same errors at the same lines).
std::string for_each_request(const std::string& path, const std::string& format,
                             const std::function<void(const Request&)>& on_request,
                             std::size_t block_bytes = std::size_t{4} << 20);

// read_trace() on text already in memory: `path` names it in error messages and, for `auto` and
// `native`, its extension helps pick the format. The trace's source is `path`.
Trace read_trace_text(std::string_view text, const std::string& path, const std::string& format = "auto");

// The trace replayed `rate_scale` times faster: arrival times (and deadlines, which stay as far
// after their arrival as before) divided by rate_scale, rounded to microseconds. Throws
// twinfer::Error unless rate_scale > 0.
Trace scale_trace(const Trace& trace, double rate_scale);

// The same requests with Poisson arrivals at the trace's mean rate ((n - 1) / span): the order
// and everything but arrival times (and deadlines, kept as far after arrival) are unchanged; the
// first arrival stays where it was. Deterministic in `seed`. Traces of fewer than two requests,
// or of zero span, are returned unchanged.
Trace poisson_arrivals(const Trace& trace, std::uint64_t seed);

// Writes the native format (CSV or JSONL by the extension of `path`).
void write_trace(const Trace& trace, const std::string& path);

}  // namespace twinfer
