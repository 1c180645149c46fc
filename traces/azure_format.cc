// Azure LLM inference trace 2023 (Splitwise): TIMESTAMP,ContextTokens,GeneratedTokens with
// wall-clock timestamps such as "2023-11-16 18:17:03.9799600".
#include "core/error.h"
#include "traces/csv_table.h"
#include "traces/trace_formats.h"

namespace twinfer {

namespace {

enum AzureColumn : std::size_t { kTimestamp, kContext, kGenerated };

const CsvSchema& azure_schema() {
  static const CsvSchema schema{{"TIMESTAMP", "ContextTokens", "GeneratedTokens"}, {true, true, true}};
  return schema;
}

// Reads exactly `digits` decimal digits at text[pos], advancing pos; false if any is not a digit.
bool read_digits(std::string_view text, std::size_t& pos, int digits, std::int64_t& value) {
  value = 0;
  for (int i = 0; i < digits; ++i, ++pos) {
    if (pos >= text.size() || text[pos] < '0' || text[pos] > '9') return false;
    value = value * 10 + (text[pos] - '0');
  }
  return true;
}

bool read_separator(std::string_view text, std::size_t& pos, std::string_view allowed) {
  if (pos >= text.size() || allowed.find(text[pos]) == std::string_view::npos) return false;
  ++pos;
  return true;
}

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
// days_from_civil), in integers so that every timestamp converts exactly.
std::int64_t days_from_civil(std::int64_t y, std::int64_t m, std::int64_t d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t year_of_era = y - era * 400;
  const std::int64_t day_of_year = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

std::int64_t days_in_month(std::int64_t y, std::int64_t m) {
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

// Fractional seconds of any length as microseconds, rounding half up past the sixth digit.
// May return 1'000'000 (e.g. ".9999996"); the caller adds it to the whole seconds.
bool read_fraction_us(std::string_view text, std::size_t& pos, std::int64_t& us) {
  us = 0;
  int digits = 0;
  bool round_up = false;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
    if (digits < 6) us = us * 10 + (text[pos] - '0');
    if (digits == 6) round_up = text[pos] >= '5';
    ++digits;
    ++pos;
  }
  if (digits == 0) return false;
  for (int i = digits; i < 6; ++i) us *= 10;
  if (round_up) ++us;
  return true;
}

}  // namespace

TimeUs parse_azure_timestamp_us(std::string_view text, const LineLocation& at) {
  text = trim(text);
  const std::string field = azure_schema().names[kTimestamp];
  auto bad = [&](const std::string& why) {
    at.fail(field, why + ": " + quoted(text) + " (expected YYYY-MM-DD HH:MM:SS.fffffff)");
  };
  std::size_t pos = 0;
  std::int64_t year, month, day, hour, minute, second, fraction_us = 0;
  const bool shape_ok = read_digits(text, pos, 4, year) && read_separator(text, pos, "-") &&
                        read_digits(text, pos, 2, month) && read_separator(text, pos, "-") &&
                        read_digits(text, pos, 2, day) && read_separator(text, pos, " T") &&
                        read_digits(text, pos, 2, hour) && read_separator(text, pos, ":") &&
                        read_digits(text, pos, 2, minute) && read_separator(text, pos, ":") &&
                        read_digits(text, pos, 2, second);
  if (!shape_ok) bad("bad timestamp");
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    if (!read_fraction_us(text, pos, fraction_us)) bad("bad timestamp");
  }
  if (pos != text.size()) bad("bad timestamp");
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) bad("no such date");
  if (hour > 23 || minute > 59 || second > 59) bad("no such time of day");
  const std::int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  return seconds * kUsPerS + fraction_us;
}

void parse_azure_csv(TextBlocks& text, const RequestSink& sink) {
  const auto& names = azure_schema().names;
  for_each_csv_row(text, azure_schema(), [&](const CsvRow& row) {
    Request r;
    r.arrival_us = parse_azure_timestamp_us(row.text(kTimestamp), row.at());
    r.input_tokens = parse_token_count(row.text(kContext), names[kContext], row.at());
    r.output_tokens = parse_token_count(row.text(kGenerated), names[kGenerated], row.at());
    sink(std::move(r));
  });
}

}  // namespace twinfer
