#include "traces/json_line.h"

#include <nlohmann/json.hpp>

namespace twinfer {

namespace {

// Nested arrays and objects deeper than this are refused: the scanner recurses once per level, and
// a line of a few thousand '[' would otherwise overflow the stack. Trace lines nest a level or two.
constexpr int kMaxJsonDepth = 64;

// A recursive-descent validator over one line. Each scan_* starts at pos_ and leaves pos_ just
// after what it scanned.
class JsonScanner {
 public:
  JsonScanner(std::string_view line, const LineLocation& at) : line_(line), at_(at) {}

  void scan_object(std::vector<JsonMember>* members) {
    const DepthGuard guard(*this);
    expect('{');
    skip_space();
    if (peek() == '}') {
      ++pos_;
      return;
    }
    while (true) {
      skip_space();
      JsonMember member;
      bool key_escapes = false;
      member.key = scan_string(key_escapes);
      skip_space();
      expect(':');
      skip_space();
      const std::size_t begin = pos_;
      member.kind = scan_value(member.has_escapes);
      member.raw = line_.substr(begin, pos_ - begin);
      if (member.kind == JsonKind::kString) member.raw = member.raw.substr(1, member.raw.size() - 2);
      if (members) members->push_back(member);
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      return;
    }
  }

  void expect_end() {
    skip_space();
    if (pos_ != line_.size()) fail("unexpected text after the object");
  }

  void skip_space() {
    while (pos_ < line_.size() && (line_[pos_] == ' ' || line_[pos_] == '\t' || line_[pos_] == '\r')) ++pos_;
  }

 private:
  // Counts one level of nesting for as long as it lives.
  class DepthGuard {
   public:
    explicit DepthGuard(JsonScanner& scanner) : scanner_(scanner) {
      if (++scanner_.depth_ > kMaxJsonDepth) {
        scanner_.fail("nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      }
    }
    ~DepthGuard() { --scanner_.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;

   private:
    JsonScanner& scanner_;
  };

  char peek() const { return pos_ < line_.size() ? line_[pos_] : '\0'; }

  [[noreturn]] void fail(const std::string& problem) const {
    at_.fail("json", problem + " at column " + std::to_string(pos_ + 1));
  }

  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  JsonKind scan_value(bool& has_escapes) {
    const char c = peek();
    if (c == '"') {
      scan_string(has_escapes);
      return JsonKind::kString;
    }
    if (c == '{') {
      scan_object(nullptr);
      return JsonKind::kObject;
    }
    if (c == '[') {
      scan_array();
      return JsonKind::kArray;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      scan_number();
      return JsonKind::kNumber;
    }
    if (scan_literal("true") || scan_literal("false")) return JsonKind::kBool;
    if (scan_literal("null")) return JsonKind::kNull;
    fail("expected a value");
  }

  // Returns the text between the quotes.
  std::string_view scan_string(bool& has_escapes) {
    expect('"');
    const std::size_t begin = pos_;
    while (pos_ < line_.size() && line_[pos_] != '"') {
      if (static_cast<unsigned char>(line_[pos_]) < 0x20) fail("control character in a string");
      if (line_[pos_] == '\\') {
        has_escapes = true;
        ++pos_;
      }
      ++pos_;
    }
    if (pos_ >= line_.size()) fail("unterminated string");
    return line_.substr(begin, pos_++ - begin);
  }

  void scan_array() {
    const DepthGuard guard(*this);
    expect('[');
    skip_space();
    if (peek() == ']') {
      ++pos_;
      return;
    }
    while (true) {
      skip_space();
      bool ignored = false;
      scan_value(ignored);
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']');
      return;
    }
  }

  // JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  void scan_number() {
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (!scan_digits()) {
      fail("bad number");
    }
    if (peek() == '.') {
      ++pos_;
      if (!scan_digits()) fail("bad number");
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!scan_digits()) fail("bad number");
    }
  }

  bool scan_digits() {
    const std::size_t begin = pos_;
    while (peek() >= '0' && peek() <= '9') ++pos_;
    return pos_ > begin;
  }

  bool scan_literal(std::string_view word) {
    if (line_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  std::string_view line_;
  const LineLocation& at_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

void scan_json_object(std::string_view line, std::vector<JsonMember>& members, const LineLocation& at) {
  members.clear();
  JsonScanner scanner(line, at);
  scanner.skip_space();
  scanner.scan_object(&members);
  scanner.expect_end();
}

std::string json_string_value(const JsonMember& member, const LineLocation& at) {
  if (!member.has_escapes) return std::string(member.raw);
  // The quotes around raw are part of the scanned line.
  const std::string_view quoted(member.raw.data() - 1, member.raw.size() + 2);
  try {
    return nlohmann::json::parse(quoted).get<std::string>();
  } catch (const nlohmann::json::exception&) {
    at.fail(member.key, "bad escape in string");
  }
}

std::string_view json_first_element(const JsonMember& member) {
  // raw is a validated array, so the first element ends at the first ',' or ']' outside of
  // strings and nested brackets.
  std::string_view inner = member.raw.substr(1, member.raw.size() - 2);
  int depth = 0;
  bool in_string = false;
  std::size_t end = 0;
  for (; end < inner.size(); ++end) {
    const char c = inner[end];
    if (in_string) {
      if (c == '\\') ++end;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 0) {
      break;
    }
  }
  return trim(inner.substr(0, end));
}

void require_json_kind(const JsonMember& member, JsonKind kind, const LineLocation& at) {
  if (member.kind != kind) {
    at.fail(member.key, std::string("expected ") + json_kind_name(kind) + ", got " + json_kind_name(member.kind));
  }
}

const char* json_kind_name(JsonKind kind) {
  switch (kind) {
    case JsonKind::kString: return "a string";
    case JsonKind::kNumber: return "a number";
    case JsonKind::kBool: return "a boolean";
    case JsonKind::kNull: return "null";
    case JsonKind::kArray: return "an array";
    case JsonKind::kObject: return "an object";
  }
  return "a value";
}

}  // namespace twinfer
