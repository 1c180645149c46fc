#include "traces/text_input.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "core/error.h"

namespace twinfer {

std::string quoted(std::string_view text) {
  constexpr std::size_t kMaxShown = 40;
  std::string shown;
  for (unsigned char c : text.substr(0, kMaxShown)) {
    if (c >= 0x20 && c < 0x7f) {
      shown += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      shown += hex;
    }
  }
  if (text.size() > kMaxShown) shown += "...";
  return "'" + shown + "'";
}

namespace {

// from_chars accepts neither a leading '+' nor surrounding spaces; callers trim, and a '+' is
// rejected on purpose so that numbers look the same in every format.
template <class T>
bool parse_whole(std::string_view text, T& value) {
  if (text.empty()) return false;
  const char* end = text.data() + text.size();
  auto result = std::from_chars(text.data(), end, value);
  return result.ec == std::errc() && result.ptr == end;
}

TimeUs parse_duration_us(std::string_view text, std::string_view field, const LineLocation& at,
                         double us_per_unit, const char* unit) {
  text = trim(text);
  std::int64_t whole = 0;
  // Integers are the common case (Mooncake milliseconds, BurstGPT seconds) and convert exactly.
  if (parse_whole(text, whole)) {
    if (whole < 0) at.fail(field, "negative time " + std::string(text) + " " + unit);
    const double limit = static_cast<double>(std::numeric_limits<TimeUs>::max()) / us_per_unit;
    if (static_cast<double>(whole) >= limit) at.fail(field, "time out of range: " + std::string(text));
    return whole * static_cast<TimeUs>(us_per_unit);
  }
  double value = parse_real(text, field, at);
  if (value < 0) at.fail(field, "negative time " + std::string(text) + " " + unit);
  const double us = value * us_per_unit;
  if (us >= 9.0e18) at.fail(field, "time out of range: " + std::string(text));
  return static_cast<TimeUs>(std::llround(us));
}

}  // namespace

namespace {

// Regular files only: a directory fails oddly, /dev/zero or a pipe never ends.
std::FILE* open_trace_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) throw Error(path + ": not a regular file (trace file)");
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw Error(path + ": cannot open trace file: " + std::strerror(errno));
  return file;
}

constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

}  // namespace

TextBlocks::TextBlocks(std::string_view text, const std::string& path) : path_(&path), text_(text) {
  if (text_.substr(0, 3) == kByteOrderMark) text_.remove_prefix(3);
}

TextBlocks::TextBlocks(const std::string& path, std::size_t block_bytes)
    : path_(&path), file_(open_trace_file(path)), block_bytes_(std::max<std::size_t>(block_bytes, 1)) {}

TextBlocks::~TextBlocks() {
  if (file_) std::fclose(file_);
}

bool TextBlocks::fill() {
  if (at_end_) return false;
  if (start_ > 0) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  const std::size_t old_size = buffer_.size();
  buffer_.resize(old_size + block_bytes_);
  const std::size_t n = std::fread(buffer_.data() + old_size, 1, block_bytes_, file_);
  buffer_.resize(old_size + n);
  if (std::ferror(file_)) throw Error(*path_ + ": cannot read trace file");
  if (n < block_bytes_) at_end_ = true;
  if (!started_ && (buffer_.size() >= kByteOrderMark.size() || at_end_)) {
    started_ = true;
    if (std::string_view(buffer_).substr(0, 3) == kByteOrderMark) buffer_.erase(0, 3);
  }
  return n > 0;
}

std::string_view TextBlocks::peek() {
  if (file_ == nullptr) return text_;
  // Up to the end of the first line that is not blank, or the end of the file.
  for (;;) {
    const std::size_t text = buffer_.find_first_not_of(" \t\r\n", start_);
    if (started_ && text != std::string::npos && buffer_.find('\n', text) != std::string::npos) break;
    if (!fill()) break;
  }
  return std::string_view(buffer_).substr(start_);
}

bool TextBlocks::next(std::string_view& block, std::size_t& first_line) {
  if (file_ == nullptr) {
    if (text_.empty()) return false;
    block = text_;
    first_line = next_line_;
    text_ = {};
    return true;
  }
  // Up to the last newline of what is buffered, reading on until there is one or the file ends.
  std::size_t end = std::string::npos;
  for (;;) {
    const std::size_t last = buffer_.rfind('\n');
    if (last != std::string::npos && last >= start_) {
      end = last + 1;
      if (buffer_.size() - start_ >= block_bytes_ || at_end_) break;
    }
    if (!fill()) break;
  }
  if (end == std::string::npos || at_end_) end = buffer_.size();  // the rest, its last line unended
  if (end <= start_) return false;
  block = std::string_view(buffer_).substr(start_, end - start_);
  first_line = next_line_;
  next_line_ += static_cast<std::size_t>(std::count(block.begin(), block.end(), '\n'));
  start_ = end;
  return true;
}

std::string read_whole_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(open_trace_file(path), &std::fclose);
  std::string content;
  // One allocation of the file's size where it is known; growing a string of a large trace
  // would copy it several times.
  if (std::fseek(file.get(), 0, SEEK_END) == 0) {
    const long size = std::ftell(file.get());
    if (size > 0) content.reserve(static_cast<std::size_t>(size));
    std::rewind(file.get());
  }
  char buffer[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) content.append(buffer, n);
  if (std::ferror(file.get())) throw Error(path + ": cannot read trace file");
  return content;
}

void LineLocation::fail(std::string_view field, const std::string& problem) const {
  throw Error(*path + ":" + std::to_string(line) + ": " + std::string(field) + ": " + problem);
}

bool LineCursor::next(std::string_view& line) {
  if (pos_ >= text_.size()) return false;
  const char* start = text_.data() + pos_;
  const void* newline = std::memchr(start, '\n', text_.size() - pos_);
  std::size_t end = newline ? static_cast<std::size_t>(static_cast<const char*>(newline) - text_.data())
                            : text_.size();
  line = text_.substr(pos_, end - pos_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos_ = end + 1;
  ++line_number_;
  return true;
}

std::size_t count_lines(std::string_view text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
}

bool is_blank(std::string_view line) { return trim(line).empty(); }

std::string_view trim(std::string_view text) {
  std::size_t begin = 0;
  while (begin < text.size() && (text[begin] == ' ' || text[begin] == '\t')) ++begin;
  std::size_t end = text.size();
  while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t')) --end;
  return text.substr(begin, end - begin);
}

std::int32_t parse_token_count(std::string_view text, std::string_view field, const LineLocation& at) {
  text = trim(text);
  std::int64_t value = 0;
  if (!parse_whole(text, value)) {
    // Some exports write counts as "12.0"; accept exact integers written that way.
    double real = 0;
    if (!parse_whole(text, real) || real != std::floor(real) || std::abs(real) > 1e18) {
      at.fail(field, "not an integer: " + quoted(text));
    }
    value = static_cast<std::int64_t>(real);
  }
  if (value < 0) at.fail(field, "negative token count " + std::to_string(value));
  if (value > std::numeric_limits<std::int32_t>::max()) {
    at.fail(field, "token count out of range: " + std::to_string(value));
  }
  return static_cast<std::int32_t>(value);
}

int parse_int(std::string_view text, std::string_view field, const LineLocation& at) {
  text = trim(text);
  int value = 0;
  if (!parse_whole(text, value)) at.fail(field, "not an integer (or out of range): " + quoted(text));
  return value;
}

std::int64_t parse_int64(std::string_view text, std::string_view field, const LineLocation& at, std::int64_t min) {
  text = trim(text);
  std::int64_t value = 0;
  if (!parse_whole(text, value)) at.fail(field, "not an integer (or out of range): " + quoted(text));
  if (value < min) at.fail(field, "expected an integer >= " + std::to_string(min) + ", got " + quoted(text));
  return value;
}

double parse_real(std::string_view text, std::string_view field, const LineLocation& at) {
  text = trim(text);
  double value = 0;
  if (!parse_whole(text, value) || !std::isfinite(value)) at.fail(field, "not a number: " + quoted(text));
  return value;
}

TimeUs parse_seconds_as_us(std::string_view text, std::string_view field, const LineLocation& at) {
  return parse_duration_us(text, field, at, 1e6, "s");
}

TimeUs parse_ms_as_us(std::string_view text, std::string_view field, const LineLocation& at) {
  return parse_duration_us(text, field, at, 1e3, "ms");
}

}  // namespace twinfer
