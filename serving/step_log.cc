#include "serving/step_log.h"

#include <cmath>

#include "traces/csv_table.h"

namespace twinfer {
namespace {

enum Column {
  kWorker, kStart, kDuration, kEngine, kKind, kSequences, kPrefillSeqs, kPrefillTokens, kPrefillPrior, kPrefillPairs,
  kDecodeSeqs, kDecodeContext, kBatchInput, kBatchMaxInput, kBatchOutput, kBatchMaxOutput, kColumns
};

const CsvSchema& step_schema() {
  static const CsvSchema schema{
      {"worker", "start_us", "duration_us", "engine_us", "kind", "sequences", "prefill_seqs", "prefill_tokens",
       "prefill_prior_tokens", "prefill_attn_pairs", "decode_seqs", "decode_context_tokens", "batch_input_tokens",
       "batch_max_input_tokens", "batch_output_tokens", "batch_max_output_tokens"},
      std::vector<bool>(kColumns, true)};
  return schema;
}

// A non-negative integer count or time.
std::int64_t count_at(const CsvRow& row, Column column) {
  const std::string& name = step_schema().names[column];
  if (row.empty(column)) row.at().fail(name, "empty field");
  return parse_int64(row.text(column), name, row.at(), 0);
}

}  // namespace

std::vector<LoggedStep> read_step_log(const std::string& path) {
  const std::string text = read_whole_file(path);
  std::vector<LoggedStep> steps;
  for_each_csv_row(text, path, step_schema(), [&](const CsvRow& row) {
    LoggedStep s;
    s.worker = row.value(kWorker);
    if (s.worker.empty()) row.at().fail("worker", "empty field");
    BatchRecord& b = s.record;
    b.start_us = count_at(row, kStart);
    b.end_us = b.start_us + count_at(row, kDuration);
    b.engine_us = count_at(row, kEngine);
    const std::string kind = row.value(kKind);
    if (kind != "iteration" && kind != "batch") {
      row.at().fail("kind", "expected \"iteration\" or \"batch\", got " + twinfer::quoted(kind));
    }
    b.request_batch = kind == "batch";
    b.size = static_cast<std::int32_t>(count_at(row, kSequences));
    IterationShape& i = b.iteration;
    i.prefill_seqs = count_at(row, kPrefillSeqs);
    i.prefill_tokens = count_at(row, kPrefillTokens);
    i.prefill_prior_tokens = count_at(row, kPrefillPrior);
    i.prefill_attn_pairs = count_at(row, kPrefillPairs);
    i.decode_seqs = count_at(row, kDecodeSeqs);
    i.decode_context_tokens = count_at(row, kDecodeContext);
    b.prefill_tokens = i.prefill_tokens;
    b.decode_seqs = static_cast<std::int32_t>(i.decode_seqs);
    RequestBatchShape& r = b.batch;
    r.batch_size = b.request_batch ? b.size : 0;
    r.input_tokens = count_at(row, kBatchInput);
    r.max_input_tokens = count_at(row, kBatchMaxInput);
    r.output_tokens = count_at(row, kBatchOutput);
    r.max_output_tokens = count_at(row, kBatchMaxOutput);
    steps.push_back(std::move(s));
  });
  return steps;
}

}  // namespace twinfer
