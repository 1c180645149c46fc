#include "serving/fidelity.h"

#include <algorithm>
#include <cmath>
#include <array>
#include <functional>
#include <map>

#include "core/error.h"
#include "traces/csv_table.h"

namespace twinfer {
namespace {

enum Column {
  kId, kArrival, kStart, kFirst, kEnd, kOutcome, kReason, kInput, kOutput, kPreemptions, kAttempts, kWorker, kPriority,
  kCachedTokens, kColumns
};

const CsvSchema& request_schema() {
  static const CsvSchema schema{{"id", "arrival_us", "start_us", "first_token_us", "end_us", "outcome", "reason",
                                 "input_tokens", "output_tokens", "preemptions", "attempts", "worker", "priority",
                                 "cached_tokens"},
                                {true, true, true, true, true, true, true, true, true, true, true, false, false, false}};
  return schema;
}

// An integer field: -1 (never happened) or more.
std::int64_t integer_at(const CsvRow& row, Column column) {
  const std::string& name = request_schema().names[column];
  if (row.empty(column)) row.at().fail(name, "empty field");
  return parse_int64(row.text(column), name, row.at(), -1);
}

const std::map<std::string, Outcome>& outcomes_by_name() {
  static const std::map<std::string, Outcome> m = {{"completed", Outcome::kCompleted},
                                                   {"rejected", Outcome::kRejected},
                                                   {"dropped", Outcome::kDropped},
                                                   {"timed_out", Outcome::kTimedOut}};
  return m;
}

const char* const kNames[3] = {"latency_ms", "ttft_ms", "tpot_ms"};

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : percentile(v, q);
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? NAN : s / double(v.size());
}

nlohmann::json number(double x) { return std::isnan(x) ? nlohmann::json() : nlohmann::json(x); }

// Per metric: the values of each run (real runs, then the simulation) on the compared requests.
struct Compared {
  std::vector<std::vector<std::array<double, 3>>> runs;  // [run][request][metric]
  std::size_t requests = 0;
};

Compared compared(const std::vector<std::vector<RequestRecord>>& real, const std::vector<RequestRecord>& sim) {
  if (real.empty()) throw Error("fidelity: no real run to compare with");
  for (const auto& r : real) {
    if (r.size() != sim.size()) {
      throw Error("fidelity: the runs hold different numbers of requests (" + std::to_string(r.size()) + " and " +
                  std::to_string(sim.size()) + "): not one trace");
    }
  }
  Compared c;
  c.runs.resize(real.size() + 1);
  for (std::size_t id = 0; id < sim.size(); ++id) {
    std::vector<RequestMetrics> m;
    for (const auto& r : real) m.push_back(request_metrics(r[id]));
    m.push_back(request_metrics(sim[id]));
    if (std::any_of(m.begin(), m.end(), [](const RequestMetrics& x) { return std::isnan(x.latency); })) continue;
    for (std::size_t run = 0; run < m.size(); ++run) c.runs[run].push_back({m[run].latency, m[run].ttft, m[run].tpot});
  }
  c.requests = c.runs.back().size();
  return c;
}

// Column `k` of run `run`, without NaNs.
std::vector<double> column(const Compared& c, std::size_t run, int k) {
  std::vector<double> v;
  for (const auto& row : c.runs[run]) {
    if (!std::isnan(row[k])) v.push_back(row[k]);
  }
  return v;
}

}  // namespace

RequestMetrics request_metrics(const RequestRecord& r) {
  RequestMetrics m;
  if (!r.ended || r.outcome != Outcome::kCompleted) return m;
  m.latency = double(r.end_us - r.arrival_us) / 1e3;
  if (r.first_token_us >= 0) m.ttft = double(r.first_token_us - r.arrival_us) / 1e3;
  if (r.first_token_us >= 0 && r.output_tokens > 1) {
    m.tpot = double(r.end_us - r.first_token_us) / 1e3 / double(r.output_tokens - 1);
  }
  return m;
}

std::vector<RequestRecord> read_requests_csv(const std::string& path, std::vector<std::string>* workers) {
  const std::string text = read_whole_file(path);
  std::vector<RequestRecord> out;
  for_each_csv_row(text, path, request_schema(), [&](const CsvRow& row) {
    RequestRecord r;
    r.id = static_cast<RequestId>(integer_at(row, kId));
    if (r.id != out.size()) row.at().fail("id", "expected " + std::to_string(out.size()) + " (ids in order)");
    r.arrival_us = integer_at(row, kArrival);
    r.start_us = integer_at(row, kStart);
    r.first_token_us = integer_at(row, kFirst);
    r.end_us = integer_at(row, kEnd);
    const std::string outcome = row.value(kOutcome);
    auto it = outcomes_by_name().find(outcome);
    r.ended = it != outcomes_by_name().end();
    if (r.ended) {
      r.outcome = it->second;
    } else if (outcome != "unfinished") {
      row.at().fail("outcome", "unknown outcome " + twinfer::quoted(outcome));
    }
    r.reason = row.value(kReason);
    r.input_tokens = static_cast<std::int32_t>(integer_at(row, kInput));
    r.output_tokens = static_cast<std::int32_t>(integer_at(row, kOutput));
    r.preemptions = static_cast<int>(integer_at(row, kPreemptions));
    r.attempts = static_cast<int>(integer_at(row, kAttempts));
    if (!row.empty(kCachedTokens)) r.cached_tokens = static_cast<std::int32_t>(integer_at(row, kCachedTokens));
    if (workers != nullptr) workers->push_back(row.value(kWorker));
    out.push_back(std::move(r));
  });
  return out;
}

nlohmann::json compare_runs(const std::vector<std::vector<RequestRecord>>& real, const std::vector<RequestRecord>& sim) {
  const Compared c = compared(real, sim);
  const std::size_t n_real = real.size();
  nlohmann::json out = {{"requests", c.requests}, {"real_runs", n_real}};
  for (int k = 0; k < 3; ++k) {
    nlohmann::json m;
    const std::vector<double> sim_values = column(c, n_real, k);
    auto statistic = [&](const std::string& name, const std::function<double(const std::vector<double>&)>& stat) {
      std::vector<double> reals;
      for (std::size_t r = 0; r < n_real; ++r) reals.push_back(stat(column(c, r, k)));
      const double real_mean = mean_of(reals);
      double spread = 0;
      for (double x : reals) spread = std::max(spread, std::abs(x - real_mean) / real_mean);
      const double s = stat(sim_values);
      m[name] = {{"real", number(real_mean)},
                 {"real_spread", number(n_real > 1 ? spread : NAN)},
                 {"sim", number(s)},
                 {"error", number((s - real_mean) / real_mean)}};
    };
    for (double q : {50.0, 90.0, 99.0}) {
      statistic("p" + std::to_string(int(q)), [q](const std::vector<double>& v) { return quantile(v, q); });
    }
    statistic("mean", mean_of);
    // Per request: against the mean of the real runs (or of the other real runs).
    auto mape = [&](std::size_t run, bool others_only) {
      double sum = 0;
      std::size_t count = 0;
      for (std::size_t i = 0; i < c.requests; ++i) {
        const double x = c.runs[run][i][k];
        double ref = 0;
        std::size_t refs = 0;
        for (std::size_t r = 0; r < n_real; ++r) {
          if (others_only && r == run) continue;
          ref += c.runs[r][i][k];
          ++refs;
        }
        ref /= double(refs);
        if (std::isnan(x) || std::isnan(ref) || ref <= 0) continue;
        sum += std::abs(x - ref) / ref;
        ++count;
      }
      return count ? sum / double(count) : NAN;
    };
    m["per_request_mape"] = number(mape(n_real, false));
    if (n_real > 1) {
      double sum = 0;
      for (std::size_t r = 0; r < n_real; ++r) sum += mape(r, true);
      m["real_per_request_mape"] = number(sum / double(n_real));
    }
    out[kNames[k]] = m;
  }
  auto counts = [](const std::vector<RequestRecord>& run) {
    nlohmann::json j = nlohmann::json::object();
    for (const RequestRecord& r : run) {
      const std::string name = r.ended ? outcome_name(r.outcome) : "unfinished";
      j[name] = j.value(name, 0) + 1;
    }
    return j;
  };
  nlohmann::json reals = nlohmann::json::array();
  for (const auto& r : real) reals.push_back(counts(r));
  out["outcomes"] = {{"real", reals}, {"sim", counts(sim)}};
  return out;
}

std::string fidelity_cdf_csv(const std::vector<std::vector<RequestRecord>>& real, const std::vector<RequestRecord>& sim) {
  const Compared c = compared(real, sim);
  std::string out = "metric,quantile,real,sim\n";
  char line[160];
  for (int k = 0; k < 3; ++k) {
    for (int q = 0; q <= 100; ++q) {
      double r = 0;
      for (std::size_t run = 0; run < real.size(); ++run) r += quantile(column(c, run, k), q);
      r /= double(real.size());
      std::snprintf(line, sizeof line, "%s,%d,%.6g,%.6g\n", kNames[k], q, r, quantile(column(c, real.size(), k), q));
      out += line;
    }
  }
  return out;
}

}  // namespace twinfer
