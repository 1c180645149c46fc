// The native trace format, as CSV and as JSONL: arrival_s, input_tokens, output_tokens and the
// optional model, priority, deadline_ms (relative to arrival), session, hash_ids (the prompt's block
// hash ids: space-separated in CSV, an array in JSONL), hash_block_tokens (tokens per hash id,
// default 512) and prompt_token_ids (the prompt as token ids, as hash_ids are written; not with
// hash_ids; hashed in blocks of hash_block_tokens, default 16).
#include <cassert>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "traces/csv_table.h"
#include "traces/json_line.h"
#include "traces/trace_formats.h"

namespace twinfer {

namespace {

enum NativeColumn : std::size_t {
  kArrival, kInput, kOutput, kModel, kPriority, kDeadline, kSession, kHashIds, kHashBlockTokens, kPromptTokenIds,
  kColumns
};

const CsvSchema& native_schema() {
  static const CsvSchema schema{
      {"arrival_s", "input_tokens", "output_tokens", "model", "priority", "deadline_ms", "session", "hash_ids",
       "hash_block_tokens", "prompt_token_ids"},
      {true, true, true, false, false, false, false, false, false, false}};
  return schema;
}

// Collects one row's fields; the deadline is relative until the arrival is known.
struct NativeRow {
  Request request;
  TimeUs deadline_after_arrival_us = kNever;
  std::vector<std::uint64_t> hash_ids;
  std::int64_t hash_block_tokens = -1;  // -1: the default of hash ids or of token ids
  std::vector<std::int32_t> token_ids;
  bool has_token_ids = false;

  void set_number(std::size_t column, std::string_view text, const LineLocation& at) {
    const std::string& name = native_schema().names[column];
    switch (column) {
      case kArrival: request.arrival_us = parse_seconds_as_us(text, name, at); break;
      case kInput: request.input_tokens = parse_token_count(text, name, at); break;
      case kOutput: request.output_tokens = parse_token_count(text, name, at); break;
      case kPriority: request.priority = parse_int(text, name, at); break;
      case kDeadline: deadline_after_arrival_us = parse_ms_as_us(text, name, at); break;
      case kHashBlockTokens:
        hash_block_tokens = parse_int64(text, name, at, 1);
        if (hash_block_tokens > (std::int64_t{1} << 30)) at.fail(name, "more than 2^30 tokens per hash id");
        break;
      default: assert(false && "model, session, hash_ids and prompt_token_ids are not numbers"); break;
    }
  }

  Request finish(const LineLocation& at, HashIdSharing& sharing) {
    if (deadline_after_arrival_us != kNever) {
      if (deadline_after_arrival_us >= kNever - request.arrival_us) at.fail("deadline_ms", "deadline out of range");
      request.deadline_us = request.arrival_us + deadline_after_arrival_us;
    }
    if (has_token_ids) {
      if (!hash_ids.empty()) at.fail(native_schema().names[kPromptTokenIds], "give a prompt's hash_ids or its token ids, not both");
      request.prefix = make_token_block_hashes(std::move(token_ids), hash_block_tokens < 0 ? kTokenHashBlockTokens : hash_block_tokens,
                                               request.input_tokens, native_schema().names[kPromptTokenIds], at);
      return request;
    }
    request.prefix = make_block_hashes(std::move(hash_ids), hash_block_tokens < 0 ? kDefaultHashBlockTokens : hash_block_tokens,
                                       request.input_tokens, request.session, sharing, native_schema().names[kHashIds], at);
    return request;
  }
};

std::size_t native_column_of_key(std::string_view key) {
  const auto& names = native_schema().names;
  for (std::size_t column = 0; column < names.size(); ++column) {
    if (names[column] == key) return column;
  }
  return kColumns;
}

std::string valid_native_keys() {
  std::string keys;
  for (const auto& name : native_schema().names) keys += (keys.empty() ? "" : ", ") + name;
  return keys;
}

void set_json_member(NativeRow& row, std::size_t column, const JsonMember& member, const LineLocation& at,
                     SharedStrings& names) {
  const bool is_string_column = column == kModel || column == kSession;
  if (member.kind == JsonKind::kNull && column >= kModel) return;  // an optional key left at its default
  if (is_string_column) {
    require_json_kind(member, JsonKind::kString, at);
    (column == kModel ? row.request.model : row.request.session) = names(json_string_value(member, at));
    return;
  }
  if (column == kHashIds) {
    require_json_kind(member, JsonKind::kArray, at);
    row.hash_ids = parse_hash_id_list(json_array_elements(member), ',', member.key, at);
    return;
  }
  if (column == kPromptTokenIds) {
    require_json_kind(member, JsonKind::kArray, at);
    row.token_ids = parse_token_id_list(json_array_elements(member), ',', member.key, at);
    row.has_token_ids = true;
    return;
  }
  require_json_kind(member, JsonKind::kNumber, at);
  row.set_number(column, member.raw, at);
}

Request parse_native_object(const std::vector<JsonMember>& members, const LineLocation& at, SharedStrings& names,
                            HashIdSharing& sharing) {
  NativeRow row;
  bool seen[kColumns] = {};
  for (const auto& member : members) {
    const std::size_t column = native_column_of_key(member.key);
    if (column == kColumns) at.fail(member.key, "unknown key; valid keys: " + valid_native_keys());
    if (seen[column]) at.fail(member.key, "duplicate key");
    seen[column] = true;
    set_json_member(row, column, member, at, names);
  }
  for (std::size_t column : {kArrival, kInput, kOutput}) {
    if (!seen[column]) at.fail(native_schema().names[column], "missing key");
  }
  return row.finish(at, sharing);
}

// Microseconds as a decimal number of `unit_us` units, exact, without trailing zeros.
std::string format_fixed(TimeUs us, TimeUs unit_us, int decimals) {
  std::string text = us < 0 ? "-" : "";
  const std::uint64_t magnitude = us < 0 ? 0 - static_cast<std::uint64_t>(us) : static_cast<std::uint64_t>(us);
  text += std::to_string(magnitude / static_cast<std::uint64_t>(unit_us));
  std::string fraction = std::to_string(magnitude % static_cast<std::uint64_t>(unit_us));
  fraction.insert(0, static_cast<std::size_t>(decimals) - fraction.size(), '0');
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  if (!fraction.empty()) text += "." + fraction;
  return text;
}

std::string deadline_ms_text(const Request& r) {
  if (r.deadline_us == kNever) return "";
  if (r.deadline_us < r.arrival_us) {
    throw Error("write_trace: request " + std::to_string(r.id) + ": deadline before its arrival");
  }
  return format_fixed(r.deadline_us - r.arrival_us, kUsPerMs, 3);
}

// Invalid UTF-8 is written as U+FFFD rather than failing the whole write.
std::string json_quoted(const std::string& value) {
  return nlohmann::json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void check_writable_text(const Request& r, const std::string& value, const char* field) {
  if (value.find_first_of("\r\n") != std::string::npos) {
    throw Error("write_trace: request " + std::to_string(r.id) + ": " + field + " holds a line break");
  }
}

std::string hash_id_text(const BlockHashes& hashes, const char* separator) {
  std::string text;
  for (std::size_t i = 0; i < hashes.size(); ++i) text += (text.empty() ? "" : separator) + std::to_string(hashes[i]);
  return text;
}

std::string token_id_text(const BlockHashes& hashes, const char* separator) {
  std::string text;
  if (!hashes.has_tokens()) return text;
  for (const std::int32_t t : hashes.tokens()) text += (text.empty() ? "" : separator) + std::to_string(t);
  return text;
}

// Whether the block size of `hashes` is other than its kind's default (hash ids or token ids).
bool block_tokens_written(const BlockHashes& hashes) {
  if (hashes.empty()) return false;
  return hashes.block_tokens() != (hashes.has_tokens() ? kTokenHashBlockTokens : kDefaultHashBlockTokens);
}

}  // namespace

void parse_native_csv(TextBlocks& text, const RequestSink& sink) {
  SharedStrings names;
  HashIdSharing sharing;
  for_each_csv_row(text, native_schema(), [&](const CsvRow& csv) {
    NativeRow row;
    for (std::size_t column : {kArrival, kInput, kOutput}) {
      if (csv.empty(column)) csv.at().fail(native_schema().names[column], "empty field");
      row.set_number(column, csv.text(column), csv.at());
    }
    if (!csv.empty(kPriority)) row.set_number(kPriority, csv.text(kPriority), csv.at());
    if (!csv.empty(kDeadline)) row.set_number(kDeadline, csv.text(kDeadline), csv.at());
    row.request.model = names(csv.value(kModel));
    row.request.session = names(csv.value(kSession));
    if (!csv.empty(kHashBlockTokens)) row.set_number(kHashBlockTokens, csv.text(kHashBlockTokens), csv.at());
    if (!csv.empty(kHashIds)) {
      row.hash_ids = parse_hash_id_list(csv.value(kHashIds), ' ', native_schema().names[kHashIds], csv.at());
    }
    if (!csv.empty(kPromptTokenIds)) {
      row.token_ids = parse_token_id_list(csv.value(kPromptTokenIds), ' ', native_schema().names[kPromptTokenIds], csv.at());
      row.has_token_ids = true;
    }
    sink(row.finish(csv.at(), sharing));
  });
}

void parse_native_jsonl(TextBlocks& text, const RequestSink& sink) {
  SharedStrings names;
  HashIdSharing sharing;
  for_each_json_line(text, [&](const std::vector<JsonMember>& members, const LineLocation& at) {
    sink(parse_native_object(members, at, names, sharing));
  });
}

std::string format_native_csv(const Trace& trace) {
  bool has[kColumns] = {true, true, true};
  for (const Request& r : trace.requests) {
    has[kModel] |= !r.model.empty();
    has[kPriority] |= r.priority != 0;
    has[kDeadline] |= r.deadline_us != kNever;
    has[kSession] |= !r.session.empty();
    has[kHashIds] |= !r.prefix.empty() && !r.prefix.has_tokens();
    has[kHashBlockTokens] |= block_tokens_written(r.prefix);
    has[kPromptTokenIds] |= r.prefix.has_tokens();
  }
  std::string out;
  for (std::size_t column = 0; column < kColumns; ++column) {
    if (has[column]) out += (column == 0 ? "" : ",") + native_schema().names[column];
  }
  out += '\n';
  for (const Request& r : trace.requests) {
    check_writable_text(r, r.model, "model");
    check_writable_text(r, r.session, "session");
    out += format_fixed(r.arrival_us, kUsPerS, 6) + ',' + std::to_string(r.input_tokens) + ',' +
           std::to_string(r.output_tokens);
    if (has[kModel]) out += ',' + csv_escape(r.model);
    if (has[kPriority]) out += ',' + std::to_string(r.priority);
    if (has[kDeadline]) out += ',' + deadline_ms_text(r);
    if (has[kSession]) out += ',' + csv_escape(r.session);
    if (has[kHashIds]) out += ',' + (r.prefix.has_tokens() ? std::string() : hash_id_text(r.prefix, " "));
    if (has[kHashBlockTokens]) out += ',' + (r.prefix.empty() ? std::string() : std::to_string(r.prefix.block_tokens()));
    if (has[kPromptTokenIds]) out += ',' + token_id_text(r.prefix, " ");
    out += '\n';
  }
  return out;
}

std::string format_native_jsonl(const Trace& trace) {
  std::string out;
  for (const Request& r : trace.requests) {
    out += "{\"arrival_s\": " + format_fixed(r.arrival_us, kUsPerS, 6) +
           ", \"input_tokens\": " + std::to_string(r.input_tokens) +
           ", \"output_tokens\": " + std::to_string(r.output_tokens);
    if (!r.model.empty()) out += ", \"model\": " + json_quoted(r.model);
    if (r.priority != 0) out += ", \"priority\": " + std::to_string(r.priority);
    if (r.deadline_us != kNever) out += ", \"deadline_ms\": " + deadline_ms_text(r);
    if (!r.session.empty()) out += ", \"session\": " + json_quoted(r.session);
    if (r.prefix.has_tokens()) {
      out += ", \"prompt_token_ids\": [" + token_id_text(r.prefix, ", ") + "]";
    } else if (!r.prefix.empty()) {
      out += ", \"hash_ids\": [" + hash_id_text(r.prefix, ", ") + "]";
    }
    if (block_tokens_written(r.prefix)) out += ", \"hash_block_tokens\": " + std::to_string(r.prefix.block_tokens());
    out += "}\n";
  }
  return out;
}

}  // namespace twinfer
