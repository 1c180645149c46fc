#include "serving/client_log.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numeric>

#include "core/error.h"
#include "core/json_file.h"
#include "serving/fidelity.h"

namespace twinfer {
namespace {

// The array `key` of a vLLM result, of `n` entries (n < 0: any length).
const nlohmann::json& array_of(const nlohmann::json& doc, const char* key, long long n, const std::string& path) {
  auto it = doc.find(key);
  if (it == doc.end()) {
    throw Error(path + ": no '" + key +
                "' array: per-request results are saved by 'vllm bench serve --save-result --save-detailed'");
  }
  if (!it->is_array()) throw Error(path + ": '" + key + "': expected an array, one entry per request");
  if (n >= 0 && static_cast<long long>(it->size()) != n) {
    throw Error(path + ": '" + key + "' has " + std::to_string(it->size()) + " entries, 'input_lens' " +
                std::to_string(n));
  }
  return *it;
}

double number_at(const nlohmann::json& a, std::size_t i, const char* key, const std::string& path) {
  const auto& v = a[i];
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
    throw Error(path + ": " + key + "[" + std::to_string(i) + "]: expected a number >= 0, got " + v.dump());
  }
  return v.get<double>();
}

TimeUs seconds_to_us(double s) { return static_cast<TimeUs>(std::llround(s * 1e6)); }

ClientLog read_vllm_bench(const std::string& path) {
  const nlohmann::json doc = read_json_file(path, "client log");
  if (!doc.is_object()) throw Error(path + ": expected a JSON object (vllm bench serve's result)");
  const auto& inputs = array_of(doc, "input_lens", -1, path);
  const long long n = static_cast<long long>(inputs.size());
  const auto& outputs = array_of(doc, "output_lens", n, path);
  const auto& ttfts = array_of(doc, "ttfts", n, path);
  const auto& latencies = array_of(doc, "latencies", n, path);
  const auto& starts = array_of(doc, "start_times", n, path);
  const nlohmann::json* errors = doc.contains("errors") ? &array_of(doc, "errors", n, path) : nullptr;

  struct Row {
    double start, ttft, latency;
    long long input, output;
  };
  std::vector<Row> rows;
  ClientLog log;
  log.source = path;
  log.format = "vllm-bench";
  for (long long i = 0; i < n; ++i) {
    const auto k = static_cast<std::size_t>(i);
    Row r;
    r.start = number_at(starts, k, "start_times", path);
    r.input = static_cast<long long>(number_at(inputs, k, "input_lens", path));
    r.output = static_cast<long long>(number_at(outputs, k, "output_lens", path));
    r.ttft = number_at(ttfts, k, "ttfts", path);
    r.latency = number_at(latencies, k, "latencies", path);
    const bool failed = errors != nullptr && !((*errors)[k].is_null() || (*errors)[k] == "");
    if (r.input < 1 || r.input > INT32_MAX) {
      throw Error(path + ": input_lens[" + std::to_string(i) + "]: expected 1 to 2^31-1 tokens, got " +
                  std::to_string(r.input));
    }
    if (failed || r.output < 1 || r.output > INT32_MAX || r.latency <= 0) {
      ++log.left_out;
      continue;
    }
    if (r.ttft > r.latency) {
      throw Error(path + ": request " + std::to_string(i) + ": ttfts (" + std::to_string(r.ttft) +
                  " s) after its end (latencies: " + std::to_string(r.latency) + " s)");
    }
    rows.push_back(r);
  }
  if (rows.empty()) throw Error(path + ": no completed request to calibrate on");
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.start < b.start; });
  const double t0 = rows.front().start;
  log.trace.source = path;
  for (std::size_t id = 0; id < rows.size(); ++id) {
    const Row& r = rows[id];
    Request q;
    q.id = id;
    q.arrival_us = seconds_to_us(r.start - t0);
    q.input_tokens = static_cast<std::int32_t>(r.input);
    q.output_tokens = static_cast<std::int32_t>(r.output);
    log.trace.requests.push_back(q);
    RequestRecord m;
    m.id = id;
    m.arrival_us = q.arrival_us;
    m.input_tokens = q.input_tokens;
    m.output_tokens = q.output_tokens;
    m.first_token_us = q.arrival_us + seconds_to_us(r.ttft);
    m.end_us = q.arrival_us + seconds_to_us(r.latency);
    m.ended = true;
    m.outcome = Outcome::kCompleted;
    log.measured.push_back(m);
  }
  return log;
}

ClientLog read_twinfer_requests(const std::string& path) {
  ClientLog log;
  log.source = path;
  log.format = "twinfer-requests";
  log.measured = read_requests_csv(path);
  if (log.measured.empty()) throw Error(path + ": no request to calibrate on");
  log.trace.source = path;
  for (std::size_t i = 0; i < log.measured.size(); ++i) {
    const RequestRecord& m = log.measured[i];
    if (i > 0 && m.arrival_us < log.measured[i - 1].arrival_us) {
      throw Error(path + ": request " + std::to_string(i) + " arrives before request " + std::to_string(i - 1) +
                  ": not a run's requests.csv");
    }
    if (m.input_tokens < 1 || m.output_tokens < 1) {
      throw Error(path + ": request " + std::to_string(i) + ": expected input and output tokens >= 1");
    }
    Request q;
    q.id = m.id;
    q.arrival_us = m.arrival_us;
    q.input_tokens = m.input_tokens;
    q.output_tokens = m.output_tokens;
    q.priority = m.priority;
    log.trace.requests.push_back(q);
  }
  return log;
}

}  // namespace

ClientLog read_client_log(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const std::string csv = (fs::path(path) / "requests.csv").string();
    if (!fs::exists(csv, ec)) throw Error(path + ": a folder without requests.csv");
    return read_twinfer_requests(csv);
  }
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".json") return read_vllm_bench(path);
  if (ext == ".csv") return read_twinfer_requests(path);
  throw Error(path + ": unknown client log: expected vllm bench serve's .json result or a twinfer requests.csv");
}

}  // namespace twinfer
