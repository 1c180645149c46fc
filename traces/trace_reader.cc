#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "traces/csv_table.h"
#include "traces/json_line.h"
#include "traces/trace.h"
#include "traces/trace_formats.h"

namespace twinfer {

namespace {

using Parser = void (*)(TextBlocks&, const RequestSink&);

struct TraceFormat {
  const char* name;
  Parser parse;
  bool absolute_times;  // timestamps of a wall clock or a log: the first arrival becomes 0
};

constexpr TraceFormat kFormats[] = {
    {"native_csv", &parse_native_csv, false},  {"native_jsonl", &parse_native_jsonl, false},
    {"azure", &parse_azure_csv, true},         {"burstgpt", &parse_burstgpt_csv, true},
    {"mooncake", &parse_mooncake_jsonl, true},
};

std::string lowercase_extension(const std::string& path) {
  const std::size_t slash = path.find_last_of("/\\");
  const std::size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::string_view first_nonblank_line(std::string_view text) {
  LineCursor cursor(text);
  std::string_view line;
  while (cursor.next(line)) {
    if (!is_blank(line)) return line;
  }
  return {};
}

bool looks_like_jsonl(const std::string& path, std::string_view text) {
  const std::string ext = lowercase_extension(path);
  if (ext == ".jsonl" || ext == ".ndjson") return true;
  if (ext == ".csv") return false;
  return trim(first_nonblank_line(text)).substr(0, 1) == "{";
}

bool has_name(const std::vector<std::string>& names, const char* name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string valid_format_names() {
  std::string names = "auto, native";
  for (const auto& f : kFormats) names += std::string(", ") + f.name;
  return names;
}

const TraceFormat& format_named(const std::string& name) {
  for (const auto& f : kFormats) {
    if (name == f.name) return f;
  }
  throw Error("unknown trace format '" + name + "'; valid formats: " + valid_format_names());
}

// Stable sort, ids in arrival order, and absolute clocks moved to start at 0.
void put_in_arrival_order(std::vector<Request>& requests, bool absolute_times) {
  const auto earlier = [](const Request& a, const Request& b) { return a.arrival_us < b.arrival_us; };
  // Most traces are already in order; checking is much cheaper than moving every request.
  if (!std::is_sorted(requests.begin(), requests.end(), earlier)) {
    std::stable_sort(requests.begin(), requests.end(), earlier);
  }
  const TimeUs origin_us = absolute_times ? requests.front().arrival_us : 0;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    Request& r = requests[i];
    r.id = i;
    r.arrival_us -= origin_us;
    if (r.deadline_us != kNever) r.deadline_us -= origin_us;
  }
}

void write_file(const std::string& path, const std::string& content) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) throw Error(path + ": cannot write trace file: " + std::strerror(errno));
  const bool written = std::fwrite(content.data(), 1, content.size(), file) == content.size();
  if (std::fclose(file) != 0 || !written) throw Error(path + ": cannot write trace file");
}

}  // namespace

std::string detect_trace_format(const std::string& path, std::string_view text) {
  if (looks_like_jsonl(path, text)) {
    const std::string_view line = first_nonblank_line(text);
    std::vector<JsonMember> members;
    try {
      scan_json_object(line, members, LineLocation{&path, 1});
    } catch (const Error&) {
      return "native_jsonl";  // its reader reports the syntax error with the right line
    }
    for (const auto& m : members) {
      if (m.key == "input_length") return "mooncake";
    }
    return "native_jsonl";
  }
  const std::vector<std::string> header = csv_header_names(text);
  if (has_name(header, "TIMESTAMP") && has_name(header, "ContextTokens")) return "azure";
  if (has_name(header, "Timestamp") && has_name(header, "Model") && has_name(header, "Request tokens")) {
    return "burstgpt";
  }
  return "native_csv";
}

namespace {

// The format `format` names for this text ("auto" and "native" resolved by its start).
const TraceFormat& resolve_format(const std::string& format, const std::string& path, TextBlocks& text) {
  if (format == "auto") return format_named(detect_trace_format(path, text.peek()));
  if (format == "native") return format_named(looks_like_jsonl(path, text.peek()) ? "native_jsonl" : "native_csv");
  return format_named(format);
}

}  // namespace

Trace read_trace(const std::string& path, const std::string& format) {
  if (format != "auto" && format != "native") format_named(format);  // fail before reading
  const std::string content = read_whole_file(path);
  return read_trace_text(content, path, format);
}

Trace read_trace_text(std::string_view text, const std::string& path, const std::string& format) {
  TextBlocks blocks(text, path);
  const TraceFormat& chosen = resolve_format(format, path, blocks);
  Trace trace;
  trace.requests.reserve(count_lines(text));
  chosen.parse(blocks, [&trace](Request&& r) { trace.requests.push_back(std::move(r)); });
  if (trace.requests.empty()) throw Error(path + ": no requests (" + chosen.name + " trace)");
  put_in_arrival_order(trace.requests, chosen.absolute_times);
  trace.source = path;
  return trace;
}

std::string for_each_request(const std::string& path, const std::string& format,
                             const std::function<void(const Request&)>& on_request, std::size_t block_bytes) {
  if (format != "auto" && format != "native") format_named(format);  // fail before reading
  TextBlocks blocks(path, block_bytes);
  const TraceFormat& chosen = resolve_format(format, path, blocks);
  std::size_t n = 0;
  chosen.parse(blocks, [&](Request&& r) {
    ++n;
    on_request(r);
  });
  if (n == 0) throw Error(path + ": no requests (" + chosen.name + " trace)");
  return chosen.name;
}

void write_trace(const Trace& trace, const std::string& path) {
  const std::string ext = lowercase_extension(path);
  if (ext == ".csv") return write_file(path, format_native_csv(trace));
  if (ext == ".jsonl") return write_file(path, format_native_jsonl(trace));
  throw Error(path + ": cannot tell the trace format to write; use a .csv or .jsonl extension");
}

}  // namespace twinfer
