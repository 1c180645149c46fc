// The trace formats, one reader each (internal to traces/; read_trace() is the public entry).
// Each reader takes the whole file text and its path (for error messages) and returns the
// requests in file order: ids unset, arrivals as written (absolute formats not yet rebased).
// Errors throw twinfer::Error "<path>:<line>: <field>: <problem>".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/request.h"
#include "traces/text_input.h"
#include "traces/trace.h"

namespace twinfer {

std::vector<Request> parse_native_csv(std::string_view text, const std::string& path);
std::vector<Request> parse_native_jsonl(std::string_view text, const std::string& path);
std::vector<Request> parse_azure_csv(std::string_view text, const std::string& path);
std::vector<Request> parse_burstgpt_csv(std::string_view text, const std::string& path);
std::vector<Request> parse_mooncake_jsonl(std::string_view text, const std::string& path);

// The format `auto` resolves to for this file: "native_csv", "native_jsonl", "azure", "burstgpt"
// or "mooncake", chosen by the extension of `path` and the first line of `text`.
std::string detect_trace_format(const std::string& path, std::string_view text);

// An Azure TIMESTAMP "YYYY-MM-DD HH:MM:SS[.fraction]" as microseconds since 1970-01-01 00:00:00
// (proleptic Gregorian calendar, no time zone); digits past the sixth fractional one round half up.
TimeUs parse_azure_timestamp_us(std::string_view text, const LineLocation& at);

// The native formats as text (see write_trace()).
std::string format_native_csv(const Trace& trace);
std::string format_native_jsonl(const Trace& trace);

}  // namespace twinfer
