// BurstGPT (Wang et al., 2024): Timestamp,Model,Request tokens,Response tokens,Total tokens,
// Log Type, with Timestamp in seconds from the start of the log.
#include "traces/csv_table.h"
#include "traces/trace_formats.h"

namespace twinfer {

namespace {

enum BurstGptColumn : std::size_t { kTimestamp, kModel, kRequestTokens, kResponseTokens, kTotalTokens, kLogType };

const CsvSchema& burstgpt_schema() {
  static const CsvSchema schema{
      {"Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"},
      {true, true, true, true, false, false}};
  return schema;
}

}  // namespace

// Rows with 0 response tokens are failed requests in BurstGPT; they are kept with output 0 so
// that the arrival process stays the logged one.
void parse_burstgpt_csv(TextBlocks& text, const RequestSink& sink) {
  const auto& names = burstgpt_schema().names;
  SharedStrings models;
  for_each_csv_row(text, burstgpt_schema(), [&](const CsvRow& row) {
    Request r;
    r.arrival_us = parse_seconds_as_us(row.text(kTimestamp), names[kTimestamp], row.at());
    r.model = models(row.value(kModel));
    r.input_tokens = parse_token_count(row.text(kRequestTokens), names[kRequestTokens], row.at());
    r.output_tokens = parse_token_count(row.text(kResponseTokens), names[kResponseTokens], row.at());
    sink(std::move(r));
  });
}

}  // namespace twinfer
