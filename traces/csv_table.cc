#include "traces/csv_table.h"

#include <algorithm>

#include "core/error.h"

namespace twinfer {

namespace {

// Parses a quoted field starting at line[pos] == '"'; leaves pos after the closing quote.
CsvField split_quoted_field(std::string_view line, std::size_t& pos, std::size_t field_number,
                            const LineLocation& at) {
  CsvField field;
  const std::size_t begin = ++pos;
  while (true) {
    std::size_t quote = line.find('"', pos);
    if (quote == std::string_view::npos) {
      at.fail("column " + std::to_string(field_number), "unterminated quote");
    }
    if (quote + 1 < line.size() && line[quote + 1] == '"') {
      field.has_doubled_quotes = true;
      pos = quote + 2;
      continue;
    }
    field.text = line.substr(begin, quote - begin);
    pos = quote + 1;
    return field;
  }
}

std::string all_names(const CsvSchema& schema) {
  std::string names;
  for (const auto& name : schema.names) names += (names.empty() ? "" : ", ") + name;
  return names;
}

std::string required_names(const CsvSchema& schema) {
  std::string names;
  for (std::size_t i = 0; i < schema.names.size(); ++i) {
    if (schema.required[i]) names += (names.empty() ? "" : ", ") + schema.names[i];
  }
  return names;
}

// A column name as messages show it: as is, or quoted() when it is long or not printable.
std::string shown(const std::string& name) {
  const bool plain = name.size() <= 40 && std::all_of(name.begin(), name.end(), [](unsigned char c) {
                       return c >= 0x20 && c < 0x7f;
                     });
  return plain ? name : quoted(name);
}

std::vector<int> match_header(const std::vector<std::string>& header, const CsvSchema& schema,
                              const LineLocation& at) {
  std::vector<int> position_of_column(schema.names.size(), -1);
  for (std::size_t pos = 0; pos < header.size(); ++pos) {
    const std::string& name = header[pos];
    std::size_t column = 0;
    while (column < schema.names.size() && schema.names[column] != name) ++column;
    if (column == schema.names.size()) {
      at.fail(name.empty() ? "column " + std::to_string(pos + 1) : shown(name),
              "unknown column; valid columns: " + all_names(schema));
    }
    if (position_of_column[column] >= 0) at.fail(shown(name), "duplicate column");
    position_of_column[column] = static_cast<int>(pos);
  }
  for (std::size_t column = 0; column < schema.names.size(); ++column) {
    if (schema.required[column] && position_of_column[column] < 0) {
      at.fail(schema.names[column], "missing column; required columns: " + required_names(schema));
    }
  }
  return position_of_column;
}

void check_width(const std::vector<CsvField>& fields, const std::vector<std::string>& header, const LineLocation& at) {
  if (fields.size() > header.size()) {
    at.fail("column " + std::to_string(header.size() + 1),
            "too many fields (" + std::to_string(fields.size()) + "; the header has " +
                std::to_string(header.size()) + ")");
  }
  if (fields.size() < header.size()) {
    at.fail(header[fields.size()], "missing field (the line has " + std::to_string(fields.size()) +
                                               " fields; the header has " + std::to_string(header.size()) + ")");
  }
}

}  // namespace

std::string CsvField::value() const {
  if (!has_doubled_quotes) return std::string(text);
  std::string result;
  result.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    result += text[i];
    if (text[i] == '"') ++i;  // the second quote of a doubled pair
  }
  return result;
}

void split_csv_line(std::string_view line, std::vector<CsvField>& fields, const LineLocation& at) {
  fields.clear();
  std::size_t pos = 0;
  while (true) {
    while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
    CsvField field;
    if (pos < line.size() && line[pos] == '"') {
      field = split_quoted_field(line, pos, fields.size() + 1, at);
      while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
      if (pos < line.size() && line[pos] != ',') {
        at.fail("column " + std::to_string(fields.size() + 1), "text after a closing quote");
      }
    } else {
      std::size_t comma = line.find(',', pos);
      if (comma == std::string_view::npos) comma = line.size();
      field.text = trim(line.substr(pos, comma - pos));
      pos = comma;
    }
    fields.push_back(field);
    if (pos >= line.size()) return;
    ++pos;  // the comma
  }
}

bool CsvRow::empty(std::size_t column) const {
  const CsvField* f = field(column);
  return f == nullptr || f->text.empty();
}

std::string_view CsvRow::text(std::size_t column) const {
  const CsvField* f = field(column);
  return f ? f->text : std::string_view();
}

std::string CsvRow::value(std::size_t column) const {
  const CsvField* f = field(column);
  return f ? f->value() : std::string();
}

const CsvField* CsvRow::field(std::size_t column) const {
  const int pos = (*position_of_column_)[column];
  return pos < 0 ? nullptr : &(*fields_)[static_cast<std::size_t>(pos)];
}

void for_each_csv_row(TextBlocks& text, const CsvSchema& schema, const std::function<void(const CsvRow&)>& on_row) {
  const std::string& path = text.path();
  std::vector<std::string> header;  // the header's names, once read
  std::vector<int> position_of_column;
  std::vector<CsvField> fields;
  CsvRow row;
  row.fields_ = &fields;
  row.position_of_column_ = &position_of_column;
  row.at_.path = &path;
  std::string_view block, line;
  std::size_t first_line = 1;
  while (text.next(block, first_line)) {
    LineCursor cursor(block, first_line);
    while (cursor.next(line)) {
      if (is_blank(line)) continue;
      row.at_.line = cursor.line_number();
      split_csv_line(line, fields, row.at_);
      if (position_of_column.empty()) {
        for (const auto& f : fields) header.push_back(f.value());
        position_of_column = match_header(header, schema, row.at_);
        continue;
      }
      check_width(fields, header, row.at_);
      on_row(row);
    }
  }
  if (position_of_column.empty()) {
    LineLocation{&path, 1}.fail("header", "empty file; expected a header line naming the columns");
  }
}

void for_each_csv_row(std::string_view text, const std::string& path, const CsvSchema& schema,
                      const std::function<void(const CsvRow&)>& on_row) {
  TextBlocks blocks(text, path);
  for_each_csv_row(blocks, schema, on_row);
}

std::vector<std::string> csv_header_names(std::string_view text) {
  LineCursor cursor(text);
  std::string_view line;
  while (cursor.next(line)) {
    if (is_blank(line)) continue;
    const std::string path = "(header)";
    std::vector<CsvField> fields;
    try {
      split_csv_line(line, fields, LineLocation{&path, cursor.line_number()});
    } catch (const Error&) {
      return {};
    }
    std::vector<std::string> names;
    for (const auto& f : fields) names.push_back(f.value());
    return names;
  }
  return {};
}

std::string csv_escape(const std::string& value) {
  const bool needs_quotes = value.find_first_of(",\"\r\n") != std::string::npos ||
                            (!value.empty() && (value.front() == ' ' || value.front() == '\t' ||
                                                value.back() == ' ' || value.back() == '\t'));
  if (!needs_quotes) return value;
  std::string quoted = "\"";
  for (char c : value) {
    quoted += c;
    if (c == '"') quoted += '"';
  }
  return quoted + "\"";
}

}  // namespace twinfer
