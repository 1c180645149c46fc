#include "serving/recorder.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>

#include "core/error.h"
#include "policies/worker_state.h"

namespace twinfer {
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open_for_write(const std::string& path) {
  File f(std::fopen(path.c_str(), "w"));
  if (!f) throw Error(path + ": cannot open for writing");
  return f;
}

void close_checked(File f, const std::string& path) {
  bool bad = std::ferror(f.get()) != 0;
  if (std::fclose(f.release()) != 0 || bad) throw Error(path + ": write failed");
}

nlohmann::json stats_ms(std::vector<double> values_ms) {
  nlohmann::json j;
  if (values_ms.empty()) {
    for (const char* k : {"mean", "p50", "p90", "p99", "max"}) j[k] = nullptr;
    return j;
  }
  std::sort(values_ms.begin(), values_ms.end());
  double sum = 0;
  for (double v : values_ms) sum += v;
  j["mean"] = sum / static_cast<double>(values_ms.size());
  j["p50"] = percentile(values_ms, 50);
  j["p90"] = percentile(values_ms, 90);
  j["p99"] = percentile(values_ms, 99);
  j["max"] = values_ms.back();
  return j;
}

// CSV field quoting per RFC 4180, only when needed.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

BatchRecord BatchRecord::of(int worker, const BatchPlan& plan, const WorkerState& state, TimeUs start_us,
                            TimeUs end_us, bool shape) {
  BatchRecord b;
  b.worker = worker;
  b.start_us = start_us;
  b.end_us = end_us;
  b.size = static_cast<std::int32_t>(plan.entries.size());
  for (const auto& e : plan.entries) {
    b.prefill_tokens += e.prefill_tokens;
    b.decode_seqs += e.decode ? 1 : 0;
  }
  b.request_batch = plan.kind == BatchKind::kRequestBatch;
  b.cached_tokens = state.started_cached_tokens();
  if (!shape) return b;
  if (b.request_batch) {
    b.batch = state.request_batch_shape(plan);
  } else {
    b.iteration = state.iteration_shape(plan);
  }
  return b;
}

BatchRecord BatchRecord::decode_step(int worker, std::int64_t seqs, std::int64_t context_tokens, TimeUs start_us,
                                     TimeUs end_us, bool shape) {
  BatchRecord b;
  b.worker = worker;
  b.start_us = start_us;
  b.end_us = end_us;
  b.size = static_cast<std::int32_t>(seqs);
  b.decode_seqs = static_cast<std::int32_t>(seqs);
  if (shape) {
    b.iteration.decode_seqs = seqs;
    b.iteration.decode_context_tokens = context_tokens;
  }
  return b;
}

Recorder::Recorder(const std::vector<Request>& requests, std::vector<std::string> workers, SloSpec slo,
                   bool keep_batches, bool keep_steps)
    : requests_(&requests), progress_(requests.size()), workers_(std::move(workers)), slo_(slo),
      keep_batches_(keep_batches), keep_steps_(keep_steps), last_batch_(workers_.size(), -1), totals_(workers_.size()) {
  for (std::size_t i = 0; i < requests.size(); ++i) assert(requests[i].id == i);
}

Recorder::Progress& Recorder::end(RequestId id, Outcome outcome, const std::string& reason, TimeUs now_us) {
  assert(id < progress_.size());
  Progress& r = progress_[id];
  assert(!r.ended && "a request ended twice");
  r.ended = true;
  r.outcome = outcome;
  if (!reason.empty()) {
    auto [it, added] = reason_index_.try_emplace(reason, static_cast<std::uint32_t>(reasons_.size()));
    if (added) reasons_.push_back(reason);
    r.reason = it->second;
  }
  r.end_us = now_us;
  return r;
}

void Recorder::reject(RequestId id, TimeUs now_us, const std::string& reason) {
  end(id, Outcome::kRejected, reason, now_us);
}

void Recorder::routed(RequestId id, int worker) {
  progress_[id].worker = worker;
  ++progress_[id].attempts;
}

namespace {

// What requests found in the prefix cache when they first started: prompt tokens of the started
// requests and the cached ones among them (the rest was computed); the same in KV blocks of their
// workers (a prompt's blocks: its tokens over the block size, rounded up), for the requests that
// started on a worker that tracks KV blocks; of the cached tokens, those loaded from a host tier.
// Counts < 0 are left out.
nlohmann::json prefix_cache_json(std::int64_t started, std::int64_t with_hits, std::int64_t prompt_tokens,
                                 std::int64_t cached_tokens, std::int64_t prompt_blocks, std::int64_t cached_blocks,
                                 std::int64_t host_cached_tokens = -1) {
  nlohmann::json j;
  if (started >= 0) j["started_requests"] = started;
  if (with_hits >= 0) j["requests_with_hits"] = with_hits;
  j["prompt_tokens"] = prompt_tokens;
  j["cached_tokens"] = cached_tokens;
  j["computed_tokens"] = prompt_tokens - cached_tokens;
  j["hit_rate"] = prompt_tokens > 0 ? double(cached_tokens) / double(prompt_tokens) : 0.0;
  j["prompt_blocks"] = prompt_blocks;
  j["cached_blocks"] = cached_blocks;
  j["block_hit_rate"] = prompt_blocks > 0 ? double(cached_blocks) / double(prompt_blocks) : 0.0;
  if (host_cached_tokens >= 0) j["host_cached_tokens"] = host_cached_tokens;
  return j;
}

// A prompt's KV blocks and its cached ones, in blocks of `block_tokens` (0: none counted).
void add_blocks(std::int32_t input_tokens, std::int32_t cached_tokens, std::int32_t block_tokens,
                std::int64_t& prompt_blocks, std::int64_t& cached_blocks) {
  if (block_tokens <= 0 || cached_tokens < 0) return;
  prompt_blocks += (std::int64_t{input_tokens} + block_tokens - 1) / block_tokens;
  cached_blocks += cached_tokens / block_tokens;
}

}  // namespace

RequestRecord Recorder::record(RequestId id) const {
  const Request& q = (*requests_)[id];
  const Progress& p = progress_[id];
  RequestRecord r;
  r.id = q.id;
  r.arrival_us = q.arrival_us;
  r.input_tokens = q.input_tokens;
  r.output_tokens = q.output_tokens;
  r.priority = q.priority;
  r.deadline_us = q.deadline_us;
  r.worker = p.worker;
  r.start_us = p.start_us;
  r.first_token_us = p.first_token_us;
  r.end_us = p.end_us;
  r.preemptions = p.preemptions;
  r.attempts = p.attempts;
  r.cached_tokens = p.cached_tokens;
  r.ended = p.ended;
  r.outcome = p.outcome;
  r.reason = reasons_[p.reason];
  return r;
}

std::vector<RequestRecord> Recorder::records() const {
  std::vector<RequestRecord> out;
  out.reserve(progress_.size());
  for (RequestId id = 0; id < progress_.size(); ++id) out.push_back(record(id));
  return out;
}

void Recorder::lost(RequestId id, Outcome outcome, const std::string& reason, TimeUs now_us) {
  assert(outcome != Outcome::kCompleted);
  end(id, outcome, reason, now_us);
}

void Recorder::counter(TimeUs at_us, const std::string& name,
                       const std::vector<std::pair<std::string, double>>& values) {
  counters_.push_back({at_us, name, values});
}

void Recorder::marker(TimeUs at_us, int worker, const std::string& name, const std::string& detail) {
  markers_.push_back({at_us, worker, name, detail});
}

void Recorder::finished(const Sequence& seq, int worker, Outcome outcome, const std::string& reason,
                        TimeUs first_token_us, TimeUs end_us) {
  Progress& r = end(seq.request.id, outcome, reason, end_us);
  r.worker = worker;
  r.start_us = seq.started_us == kNever ? -1 : seq.started_us;
  r.first_token_us = outcome == Outcome::kCompleted ? first_token_us : -1;
  r.preemptions = seq.preemptions;
  r.cached_tokens = seq.cached_tokens;
  r.block_tokens = seq.block_tokens;
  WorkerTotals& t = totals_[worker];
  t.preemptions += seq.preemptions;
  if (seq.cached_tokens >= 0) {
    t.prompt_tokens += seq.request.input_tokens;
    t.cached_tokens += seq.cached_tokens;
    t.host_cached_tokens += seq.host_cached_tokens;
    add_blocks(seq.request.input_tokens, seq.cached_tokens, seq.block_tokens, t.prompt_blocks, t.cached_blocks);
  }
  if (outcome == Outcome::kCompleted) ++t.completed;
}

void Recorder::batch(const BatchRecord& b) {
  WorkerTotals& t = totals_[b.worker];
  t.busy_us += b.end_us - b.start_us;
  ++t.batches;
  t.sequences += b.size;
  ++batch_count_;
  if (keep_steps_) steps_.push_back(b);
  if (!keep_batches_) return;
  std::int64_t& last = last_batch_[b.worker];
  if (last >= 0 && b.prefill_tokens == 0) {
    BatchRecord& prev = batches_[last];
    if (prev.prefill_tokens == 0 && prev.size == b.size && prev.end_us == b.start_us) {
      prev.end_us = b.end_us;
      prev.iterations += b.iterations;
      return;
    }
  }
  last = static_cast<std::int64_t>(batches_.size());
  batches_.push_back(b);
}

void Recorder::decode_steps(int worker, std::int64_t seqs, std::int64_t context_tokens, TimeUs start_us,
                            const TimeUs* ends, std::size_t steps) {
  if (steps == 0) return;
  if (keep_steps_) {
    for (std::size_t k = 0; k < steps; ++k) {
      context_tokens += seqs;
      batch(BatchRecord::decode_step(worker, seqs, context_tokens, start_us, ends[k], true));
      start_us = ends[k];
    }
    return;
  }
  if (keep_batches_) {
    // The first step starts a timeline slice or extends one; the others extend it, as batch()
    // would merge each.
    batch(BatchRecord::decode_step(worker, seqs, 0, start_us, ends[0], false));
    if (steps > 1) {
      BatchRecord& slice = batches_[static_cast<std::size_t>(last_batch_[worker])];
      slice.end_us = ends[steps - 1];
      slice.iterations += static_cast<std::int32_t>(steps - 1);
    }
    start_us = ends[0];
    ++ends;
    --steps;
    if (steps == 0) return;
  }
  WorkerTotals& t = totals_[worker];
  const auto n = static_cast<std::int64_t>(steps);
  t.busy_us += ends[steps - 1] - start_us;
  t.batches += n;
  t.sequences += seqs * n;
  batch_count_ += n;
}

void Recorder::check_all_ended() const {
  std::string missing;
  int n = 0;
  for (RequestId id = 0; id < progress_.size(); ++id) {
    if (progress_[id].ended) continue;
    if (++n <= 10) missing += (missing.empty() ? "" : ", ") + std::to_string(id);
  }
  if (n > 0) throw Error(std::to_string(n) + " request(s) never ended (ids " + missing + (n > 10 ? ", ..." : "") + ")");
}

bool Recorder::meets_slo(const Request& q, const Progress& r) const {
  if (!r.ended || r.outcome != Outcome::kCompleted) return false;
  double latency_ms = ms_from_us(r.end_us - q.arrival_us);
  double ttft_ms = ms_from_us(r.first_token_us - q.arrival_us);
  if (slo_.latency_ms > 0 && latency_ms > slo_.latency_ms) return false;
  if (slo_.ttft_ms > 0 && ttft_ms > slo_.ttft_ms) return false;
  if (slo_.tpot_ms > 0 && q.output_tokens > 1 &&
      ms_from_us(r.end_us - r.first_token_us) / (q.output_tokens - 1) > slo_.tpot_ms) {
    return false;
  }
  return q.deadline_us == kNever || r.end_us <= q.deadline_us;
}

nlohmann::json Recorder::request_stats(const std::function<bool(const Progress&)>& selected) const {
  std::int64_t total = 0, retried = 0, retries = 0;
  std::int64_t completed = 0, rejected = 0, dropped = 0, timed_out = 0, met = 0, out_tokens = 0, in_tokens = 0;
  std::int64_t started = 0, with_hits = 0, started_prompt_tokens = 0, cached_tokens = 0;
  std::int64_t prompt_blocks = 0, cached_blocks = 0;
  std::vector<std::int64_t> rejected_why(reasons_.size()), dropped_why(reasons_.size()), timed_out_why(reasons_.size());
  TimeUs first = kNever, last = 0;
  const std::vector<Request>& requests = *requests_;
  for (RequestId id = 0; id < progress_.size(); ++id) {
    const Progress& r = progress_[id];
    if (!selected(r)) continue;
    const Request& q = requests[id];
    ++total;
    first = std::min(first, q.arrival_us);
    if (r.ended) last = std::max(last, r.end_us);
    if (r.attempts > 1) {
      ++retried;
      retries += r.attempts - 1;
    }
    if (r.cached_tokens >= 0) {
      ++started;
      with_hits += r.cached_tokens > 0 ? 1 : 0;
      started_prompt_tokens += q.input_tokens;
      cached_tokens += r.cached_tokens;
      add_blocks(q.input_tokens, r.cached_tokens, r.block_tokens, prompt_blocks, cached_blocks);
    }
    if (!r.ended) continue;
    if (r.outcome == Outcome::kRejected) {
      ++rejected;
      ++rejected_why[r.reason];
      continue;
    }
    if (r.outcome == Outcome::kDropped) {
      ++dropped;
      ++dropped_why[r.reason];
      continue;
    }
    if (r.outcome == Outcome::kTimedOut) {
      ++timed_out;
      ++timed_out_why[r.reason];
      continue;
    }
    ++completed;
    out_tokens += q.output_tokens;
    in_tokens += q.input_tokens;
    if (meets_slo(q, r)) ++met;
  }
  double span_s = total == 0 || last <= first ? 0.0 : s_from_us(last - first);
  auto per_s = [&](double n) { return span_s > 0 ? n / span_s : 0.0; };
  auto reasons_json = [&](const std::vector<std::int64_t>& counts) {
    std::map<std::string, std::int64_t> by_name;
    for (std::size_t i = 0; i < counts.size(); ++i) {
      if (counts[i] > 0) by_name[reasons_[i]] += counts[i];
    }
    return nlohmann::json(by_name);
  };
  // One figure's values at a time: a run of ten million requests holds one vector of them, not four.
  auto completed_stats = [&](auto value_ms, bool (*has)(const Request&, const Progress&)) {
    std::vector<double> values;
    values.reserve(static_cast<std::size_t>(completed));
    for (RequestId id = 0; id < progress_.size(); ++id) {
      const Progress& r = progress_[id];
      if (!r.ended || r.outcome != Outcome::kCompleted || !selected(r)) continue;
      if (has(requests[id], r)) values.push_back(value_ms(requests[id], r));
    }
    return stats_ms(std::move(values));
  };
  auto always = [](const Request&, const Progress&) { return true; };

  nlohmann::json j;
  j["requests"] = {{"total", total}, {"completed", completed}, {"rejected", rejected}, {"dropped", dropped},
                     {"timed_out", timed_out}, {"retried", retried}, {"retries", retries}};
  j["reasons"] = {{"rejected", reasons_json(rejected_why)}, {"dropped", reasons_json(dropped_why)},
                  {"timed_out", reasons_json(timed_out_why)}};
  j["latency_ms"] = completed_stats(
      [](const Request& q, const Progress& r) { return ms_from_us(r.end_us - q.arrival_us); }, always);
  j["ttft_ms"] = completed_stats(
      [](const Request& q, const Progress& r) { return ms_from_us(r.first_token_us - q.arrival_us); }, always);
  // Responses returned whole (request-level batches) have no time per output token.
  j["tpot_ms"] = completed_stats(
      [](const Request& q, const Progress& r) {
        return ms_from_us(r.end_us - r.first_token_us) / (q.output_tokens - 1);
      },
      [](const Request& q, const Progress& r) { return q.output_tokens > 1 && r.end_us > r.first_token_us; });
  j["queue_ms"] = completed_stats(
      [](const Request& q, const Progress& r) { return ms_from_us(r.start_us - q.arrival_us); }, always);
  j["duration_s"] = span_s;
  j["throughput_rps"] = per_s(double(completed));
  j["tokens_per_s"] = per_s(double(out_tokens));
  j["input_tokens_per_s"] = per_s(double(in_tokens));
  j["goodput_rps"] = per_s(double(met));
  j["slo_attainment"] = total == 0 ? 0.0 : double(met) / double(total);
  j["prefix_cache"] = prefix_cache_json(started, with_hits, started_prompt_tokens, cached_tokens, prompt_blocks,
                                        cached_blocks);
  return j;
}

nlohmann::json Recorder::summary_by(const std::vector<std::string>& group_of_worker) const {
  std::map<std::string, std::vector<bool>> groups;
  for (std::size_t w = 0; w < group_of_worker.size(); ++w) {
    auto& members = groups[group_of_worker[w]];
    members.resize(group_of_worker.size(), false);
    members[w] = true;
  }
  nlohmann::json out = nlohmann::json::object();
  for (const auto& group : groups) {
    const std::vector<bool>& members = group.second;
    out[group.first] = request_stats([&members](const Progress& r) {
      return r.worker >= 0 && std::size_t(r.worker) < members.size() && members[r.worker];
    });
  }
  return out;
}

nlohmann::json Recorder::summary() const {
  nlohmann::json j = request_stats([](const Progress&) { return true; });
  const double span_s = j["duration_s"].get<double>();
  j["slo"] = {{"ttft_ms", slo_.ttft_ms}, {"tpot_ms", slo_.tpot_ms}, {"latency_ms", slo_.latency_ms}};
  nlohmann::json workers = nlohmann::json::array();
  std::int64_t host_cached_tokens = 0;
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    const WorkerTotals& t = totals_[w];
    workers.push_back({{"name", workers_[w]},
                       {"utilization", span_s > 0 ? s_from_us(t.busy_us) / span_s : 0.0},
                       {"batches", t.batches},
                       {"mean_batch_size", t.batches ? double(t.sequences) / double(t.batches) : 0.0},
                       {"preemptions", t.preemptions},
                       {"completed", t.completed},
                       {"prefix_cache", prefix_cache_json(-1, -1, t.prompt_tokens, t.cached_tokens, t.prompt_blocks,
                                                          t.cached_blocks, t.host_cached_tokens)}});
    host_cached_tokens += t.host_cached_tokens;
  }
  j["prefix_cache"]["host_cached_tokens"] = host_cached_tokens;
  j["workers"] = workers;
  return j;
}

namespace {

// Appends integers and fields to one line of CSV: std::to_chars, no format string to parse per row.
class CsvLine {
 public:
  CsvLine& num(long long v) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    line_.append(buf, end);
    line_ += ',';
    return *this;
  }
  CsvLine& text(const std::string& field) { return text(field.c_str()); }
  CsvLine& text(const char* field) {
    line_ += field;
    line_ += ',';
    return *this;
  }
  // Ends the line and writes it.
  void write(std::FILE* f) {
    line_.back() = '\n';
    std::fwrite(line_.data(), 1, line_.size(), f);
    line_.clear();
  }

 private:
  std::string line_;
};

}  // namespace

void Recorder::write_requests_csv(const std::string& path) const {
  File f = open_for_write(path);
  std::fputs("id,arrival_us,worker,start_us,first_token_us,end_us,outcome,reason,input_tokens,output_tokens,priority,"
             "preemptions,attempts,cached_tokens\n",
             f.get());
  std::vector<std::string> worker_fields;
  for (const auto& w : workers_) worker_fields.push_back(csv_field(w));
  const std::string no_worker;
  std::vector<std::string> reason_fields;
  for (const auto& reason : reasons_) reason_fields.push_back(csv_field(reason));
  const std::vector<Request>& requests = *requests_;
  CsvLine line;
  for (RequestId id = 0; id < progress_.size(); ++id) {
    const Request& q = requests[id];
    const Progress& r = progress_[id];
    line.num(static_cast<long long>(q.id))
        .num(q.arrival_us)
        .text(r.worker >= 0 ? worker_fields[static_cast<std::size_t>(r.worker)] : no_worker)
        .num(r.start_us)
        .num(r.first_token_us)
        .num(r.end_us)
        .text(r.ended ? outcome_name(r.outcome) : "unfinished")
        .text(reason_fields[r.reason])
        .num(q.input_tokens)
        .num(q.output_tokens)
        .num(q.priority)
        .num(r.preemptions)
        .num(r.attempts)
        .num(r.cached_tokens)
        .write(f.get());
  }
  close_checked(std::move(f), path);
}

namespace {

// Records by start time (then worker), whatever order the driver recorded them in: a simulated
// worker may carry out its steps ahead of the others.
std::vector<const BatchRecord*> in_start_order(const std::vector<BatchRecord>& records) {
  std::vector<const BatchRecord*> out;
  out.reserve(records.size());
  for (const auto& b : records) out.push_back(&b);
  std::stable_sort(out.begin(), out.end(), [](const BatchRecord* a, const BatchRecord* b) {
    return a->start_us != b->start_us ? a->start_us < b->start_us : a->worker < b->worker;
  });
  return out;
}

}  // namespace

void Recorder::write_timeline_json(const std::string& path) const {
  File f = open_for_write(path);
  std::fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", f.get());
  std::fputs("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":0,\"args\":{\"name\":\"workers\"}}", f.get());
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    std::fprintf(f.get(), ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":%zu,\"args\":{\"name\":%s}}", w,
                 nlohmann::json(workers_[w]).dump().c_str());
  }
  for (const BatchRecord* record : in_start_order(batches_)) {
    const BatchRecord& b = *record;
    std::fprintf(f.get(),
                 ",\n{\"name\":\"batch\",\"ph\":\"X\",\"pid\":0,\"tid\":%d,\"ts\":%lld,\"dur\":%lld,"
                 "\"args\":{\"size\":%d,\"prefill_tokens\":%lld,\"cached_tokens\":%lld,\"decode_seqs\":%d,"
                 "\"iterations\":%d}}",
                 b.worker, (long long)b.start_us, (long long)(b.end_us - b.start_us), b.size,
                 (long long)b.prefill_tokens, (long long)b.cached_tokens, b.decode_seqs, b.iterations);
  }
  if (!markers_.empty()) {
    std::fprintf(f.get(), ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":0,\"tid\":%zu,\"args\":{\"name\":\"router\"}}",
                 workers_.size());
  }
  for (const auto& m : markers_) {
    std::fprintf(f.get(), ",\n{\"name\":%s,\"ph\":\"i\",\"s\":\"t\",\"pid\":0,\"tid\":%zu,\"ts\":%lld,\"args\":{\"detail\":%s}}",
                 nlohmann::json(m.name).dump().c_str(), m.worker >= 0 ? std::size_t(m.worker) : workers_.size(),
                 (long long)m.at_us, nlohmann::json(m.detail).dump().c_str());
  }
  for (const auto& c : counters_) {
    nlohmann::json args = nlohmann::json::object();
    for (const auto& kv : c.values) args[kv.first] = kv.second;
    std::fprintf(f.get(), ",\n{\"name\":%s,\"ph\":\"C\",\"pid\":0,\"ts\":%lld,\"args\":%s}",
                 nlohmann::json(c.name).dump().c_str(), (long long)c.at_us, args.dump().c_str());
  }
  std::fputs("\n]}\n", f.get());
  close_checked(std::move(f), path);
}

void Recorder::write_steps_csv(const std::string& path) const {
  assert(keep_steps_);
  File f = open_for_write(path);
  std::fputs("worker,start_us,duration_us,engine_us,kind,sequences,prefill_seqs,prefill_tokens,prefill_prior_tokens,prefill_attn_pairs,"
             "decode_seqs,decode_context_tokens,batch_input_tokens,batch_max_input_tokens,batch_output_tokens,"
             "batch_max_output_tokens\n",
             f.get());
  for (const BatchRecord* record : in_start_order(steps_)) {
    const BatchRecord& b = *record;
    const IterationShape& i = b.iteration;
    const RequestBatchShape& r = b.batch;
    std::fprintf(f.get(), "%s,%lld,%lld,%lld,%s,%d,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld\n",
                 csv_field(workers_[b.worker]).c_str(), (long long)b.start_us, (long long)(b.end_us - b.start_us),
                 (long long)b.engine_us, b.request_batch ? "batch" : "iteration", b.size, (long long)i.prefill_seqs, (long long)i.prefill_tokens,
                 (long long)i.prefill_prior_tokens, (long long)i.prefill_attn_pairs, (long long)i.decode_seqs,
                 (long long)i.decode_context_tokens, (long long)r.input_tokens, (long long)r.max_input_tokens,
                 (long long)r.output_tokens, (long long)r.max_output_tokens);
  }
  close_checked(std::move(f), path);
}

void make_output_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create output folder: " + ec.message());
}

void write_run_outputs(const Recorder& recorder, const nlohmann::json& summary, const std::string& dir,
                       bool timeline) {
  make_output_dir(dir);
  recorder.write_requests_csv(dir + "/requests.csv");
  if (timeline) recorder.write_timeline_json(dir + "/timeline.json");
  if (recorder.keeps_steps()) recorder.write_steps_csv(dir + "/steps.csv");
  const std::string path = dir + "/summary.json";
  File f = open_for_write(path);
  const std::string text = summary.dump(2) + "\n";
  std::fwrite(text.data(), 1, text.size(), f.get());
  close_checked(std::move(f), path);
}

}  // namespace twinfer
