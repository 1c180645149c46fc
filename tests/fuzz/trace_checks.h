// What every trace reader promises of a trace it returns (traces/trace.h), checked by the trace
// fuzz targets; and a check that the native formats read back what they write.
#pragma once

#include <string>
#include <string_view>

#include "core/error.h"
#include "tests/fuzz/fuzz_input.h"
#include "traces/trace.h"
#include "traces/trace_formats.h"

namespace twinfer::fuzz {

inline void check_trace_invariants(const Trace& trace) {
  check(!trace.requests.empty(), "a trace is never empty");
  for (std::size_t i = 0; i < trace.requests.size(); ++i) {
    const Request& r = trace.requests[i];
    check(r.id == i, "ids are 0..n-1 in order");
    check(i == 0 || trace.requests[i - 1].arrival_us <= r.arrival_us, "arrivals are sorted");
    check(r.arrival_us >= 0, "arrivals are not negative");
    check(r.input_tokens >= 0 && r.output_tokens >= 0, "token counts are not negative");
    check(r.deadline_us == kNever || r.deadline_us >= r.arrival_us, "deadlines are not before arrival");
  }
}

// Writes `trace` in a native format and reads it back: the same requests must come out. Strings
// are compared only for CSV (JSONL writes invalid UTF-8 as U+FFFD, by design). A model or session
// the writer refuses (a line break) is an expected twinfer::Error.
inline void check_native_round_trip(const Trace& trace, bool jsonl) {
  std::string text;
  try {
    text = jsonl ? format_native_jsonl(trace) : format_native_csv(trace);
  } catch (const Error&) {
    return;
  }
  const Trace again = read_trace_text(text, jsonl ? "again.jsonl" : "again.csv", jsonl ? "native_jsonl" : "native_csv");
  check(again.requests.size() == trace.requests.size(), "round trip keeps every request");
  for (std::size_t i = 0; i < trace.requests.size(); ++i) {
    const Request& a = trace.requests[i];
    const Request& b = again.requests[i];
    check(a.arrival_us == b.arrival_us, "round trip keeps arrival_us");
    check(a.input_tokens == b.input_tokens && a.output_tokens == b.output_tokens, "round trip keeps tokens");
    check(a.priority == b.priority, "round trip keeps priority");
    check(a.deadline_us == b.deadline_us, "round trip keeps deadline_us");
    if (!jsonl) check(a.model == b.model && a.session == b.session, "round trip keeps model and session");
  }
}

// Reads `data` as a trace of `format`, checking what a returned trace promises. twinfer::Error is
// the expected outcome of a malformed input; anything else escaping is a finding.
enum class RoundTrip { kNone, kNativeCsv, kNativeJsonl };

inline void fuzz_trace_reader(const std::uint8_t* data, std::size_t size, const char* path, const char* format,
                              RoundTrip round_trip = RoundTrip::kNone) {
  if (size > kMaxInputBytes) return;
  const std::string_view text = as_text(data, size);
  const std::string path_name = path;
  try {
    (void)detect_trace_format(path_name, text);
    const Trace trace = read_trace_text(text, path_name, format);
    check_trace_invariants(trace);
    if (round_trip != RoundTrip::kNone) check_native_round_trip(trace, round_trip == RoundTrip::kNativeJsonl);
  } catch (const Error&) {
  }
}

}  // namespace twinfer::fuzz
