// Whole-file input, line iteration and field parsing for the trace readers. Every parse failure
// throws twinfer::Error "<file>:<line>: <field>: <problem>".
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "core/time.h"

namespace twinfer {

// Reads the whole file into memory. Throws twinfer::Error naming the path if it cannot be read.
std::string read_whole_file(const std::string& path);

// Where a field comes from, for error messages.
struct LineLocation {
  const std::string* path = nullptr;  // not owned; outlives the location
  std::size_t line = 0;               // 1-based physical line number

  // Throws twinfer::Error "<path>:<line>: <field>: <problem>".
  [[noreturn]] void fail(std::string_view field, const std::string& problem) const;
};

// A file's text a block of whole lines at a time, or text already in memory as one block, so
// that a reader can stream a file larger than it wants to hold (`twinfer trace info`). A UTF-8
// byte order mark at the start is left out.
class TextBlocks {
 public:
  // The whole of `text`, as one block. `path` names it in errors; both must outlive this.
  TextBlocks(std::string_view text, const std::string& path);
  // The file at `path`, read `block_bytes` at a time (a block grows to hold at least one whole
  // line). Throws twinfer::Error naming the path if it is not a regular file or cannot be opened.
  TextBlocks(const std::string& path, std::size_t block_bytes);
  ~TextBlocks();
  TextBlocks(const TextBlocks&) = delete;
  TextBlocks& operator=(const TextBlocks&) = delete;

  // Stores the next block (whole lines; the file's last line may lack its newline) and the file's
  // line number of its first line, and returns true; false at the end. The block stays valid
  // until the next call.
  bool next(std::string_view& block, std::size_t& first_line);
  // The start of the text, without consuming it (format detection): at least the first line
  // when the text has one shorter than the block size.
  std::string_view peek();
  const std::string& path() const { return *path_; }

 private:
  bool fill();  // reads more of the file into buffer_; false at its end

  const std::string* path_;
  std::string_view text_;     // in-memory text not yet handed out
  std::FILE* file_ = nullptr;  // null: the text is in memory
  std::size_t block_bytes_ = 0;
  std::string buffer_;        // file text read but not yet handed out starts at start_
  std::size_t start_ = 0;
  bool at_end_ = false;
  bool started_ = false;
  std::size_t next_line_ = 1;
};

// Walks the lines of a text buffer (LF or CRLF endings; the last line may lack its newline).
// The buffer must outlive the cursor and the views it hands out. `first_line` numbers the
// buffer's first line (a block of a larger text).
class LineCursor {
 public:
  explicit LineCursor(std::string_view text, std::size_t first_line = 1) : text_(text), line_number_(first_line - 1) {}
  // Stores the next line (without its line ending) and returns true; false at the end.
  bool next(std::string_view& line);
  // 1-based number of the line last returned by next().
  std::size_t line_number() const { return line_number_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::size_t line_number_ = 0;
};

// An upper bound on the number of lines, for reserving space: newlines plus one.
std::size_t count_lines(std::string_view text);

// True when the line holds only spaces and tabs.
bool is_blank(std::string_view line);
// The text without leading and trailing spaces and tabs.
std::string_view trim(std::string_view text);

// Input text as an error message quotes it: in single quotes, at most 40 bytes ("..." after),
// bytes that are not printable ASCII as \xNN (a NUL would end the message).
std::string quoted(std::string_view text);

// A token count: a non-negative integer that fits in int32.
std::int32_t parse_token_count(std::string_view text, std::string_view field, const LineLocation& at);
// Any integer that fits in int (priorities).
int parse_int(std::string_view text, std::string_view field, const LineLocation& at);
// An integer of at least `min` that fits in int64 (log files' counts and times).
std::int64_t parse_int64(std::string_view text, std::string_view field, const LineLocation& at, std::int64_t min);
// A finite decimal number (plain or exponent notation).
double parse_real(std::string_view text, std::string_view field, const LineLocation& at);
// A non-negative duration in seconds / milliseconds, rounded to the nearest microsecond. Integers
// convert exactly; fractions are rounded once.
TimeUs parse_seconds_as_us(std::string_view text, std::string_view field, const LineLocation& at);
TimeUs parse_ms_as_us(std::string_view text, std::string_view field, const LineLocation& at);

}  // namespace twinfer
