// CSV files with a header line, as the trace readers see them: columns matched by header name.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "traces/text_input.h"

namespace twinfer {

// One field of a CSV line. `text` is the field without its quotes (and, if unquoted, without
// surrounding spaces); if it was quoted and held doubled quotes (""), value() undoes them.
struct CsvField {
  std::string_view text;
  bool has_doubled_quotes = false;
  std::string value() const;
};

// Splits one line into fields: comma separated, RFC 4180 quoting within the line. Throws at `at`
// on an unterminated quote or text after a closing quote. `fields` is cleared first.
void split_csv_line(std::string_view line, std::vector<CsvField>& fields, const LineLocation& at);

// The columns a format knows, in the schema's own order.
struct CsvSchema {
  std::vector<std::string> names;
  std::vector<bool> required;  // same size as names
};

// One data row, with fields addressed by schema column index.
class CsvRow {
 public:
  bool has(std::size_t column) const { return field(column) != nullptr; }
  // True when the column is absent or its field is empty (an optional field left at its default).
  bool empty(std::size_t column) const;
  // The field's text; the empty string for an absent column.
  std::string_view text(std::size_t column) const;
  // The field's text with quoting undone.
  std::string value(std::size_t column) const;
  const LineLocation& at() const { return at_; }

 private:
  friend void for_each_csv_row(TextBlocks&, const CsvSchema&, const std::function<void(const CsvRow&)>&);
  const CsvField* field(std::size_t column) const;

  const std::vector<CsvField>* fields_ = nullptr;
  const std::vector<int>* position_of_column_ = nullptr;
  LineLocation at_;
};

// Reads the header (the first non-blank line), matches its names to the schema (throws on an
// unknown, duplicate or missing required column), then calls on_row for every non-blank line.
// Throws "<path>:<line>: <column>: ..." when a line has too few or too many fields.
void for_each_csv_row(std::string_view text, const std::string& path, const CsvSchema& schema,
                      const std::function<void(const CsvRow&)>& on_row);
// The same over a text read a block at a time.
void for_each_csv_row(TextBlocks& text, const CsvSchema& schema, const std::function<void(const CsvRow&)>& on_row);

// Reads only the header line's names (for format detection); empty if the text has none.
std::vector<std::string> csv_header_names(std::string_view text);

// Quotes a value for writing if it holds a comma, a quote, a line break or edge spaces.
std::string csv_escape(const std::string& value);

}  // namespace twinfer
