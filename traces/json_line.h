// One JSON object on one line, split into its members without building a DOM: the JSONL trace
// readers parse millions of such lines.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "traces/text_input.h"

namespace twinfer {

enum class JsonKind { kString, kNumber, kBool, kNull, kArray, kObject };

// One member of an object. Views point into the scanned line.
struct JsonMember {
  std::string_view key;     // between its quotes, escapes not undone
  JsonKind kind = JsonKind::kNull;
  std::string_view raw;     // the value's text; for a string, between its quotes
  bool has_escapes = false; // a string value holding backslash escapes
};

// Splits a line holding one JSON object into its members in order of appearance; nested arrays
// and objects are validated and kept whole in `raw`. Throws at `at` (field "json") on a syntax
// error. `members` is cleared first.
void scan_json_object(std::string_view line, std::vector<JsonMember>& members, const LineLocation& at);

// Scans every non-blank line of a JSONL text and calls `on_object(members, at)` for each, in
// order. Errors name the text's path and the line.
template <class OnObject>
void for_each_json_line(TextBlocks& text, OnObject on_object) {
  std::vector<JsonMember> members;
  std::string_view block, line;
  std::size_t first_line = 1;
  LineLocation at{&text.path(), 0};
  while (text.next(block, first_line)) {
    LineCursor cursor(block, first_line);
    while (cursor.next(line)) {
      if (is_blank(line)) continue;
      at.line = cursor.line_number();
      scan_json_object(line, members, at);
      on_object(members, at);
    }
  }
}

// A string member's value with escapes undone. Precondition: member.kind == kString.
std::string json_string_value(const JsonMember& member, const LineLocation& at);

// The raw text of the first element of an array member; empty for an empty array.
// Precondition: member.kind == kArray.
std::string_view json_first_element(const JsonMember& member);

// The JSON name of a kind, for error messages ("a string", "an array", ...).
const char* json_kind_name(JsonKind kind);

// Fails at `at`, naming the member's key, unless the member is of `kind` ("expected an array, got
// a string").
void require_json_kind(const JsonMember& member, JsonKind kind, const LineLocation& at);

// The raw text between an array member's brackets. Precondition: member.kind == kArray.
inline std::string_view json_array_elements(const JsonMember& member) {
  return std::string_view(member.raw).substr(1, member.raw.size() - 2);
}

}  // namespace twinfer
