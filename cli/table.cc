#include "cli/table.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iomanip>

#include "core/error.h"

namespace twinfer::cli {

Table::Table(std::vector<std::string> header, int left_columns)
    : header_(std::move(header)), left_columns_(left_columns) {}

void Table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> width(header_.size());
  for (std::size_t c = 0; c < header_.size(); ++c) {
    width[c] = header_[c].size();
    for (const auto& r : rows_) width[c] = std::max(width[c], r[c].size());
  }
  auto line = [&](const std::vector<std::string>& row) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c) out << "  ";
      if (static_cast<int>(c) < left_columns_) {
        out << std::left << std::setw(static_cast<int>(width[c])) << row[c];
      } else {
        out << std::right << std::setw(static_cast<int>(width[c])) << row[c];
      }
    }
    out << std::left << "\n";
  };
  line(header_);
  std::vector<std::string> rule;
  for (auto w : width) rule.push_back(std::string(w, '-'));
  line(rule);
  for (const auto& r : rows_) line(r);
}

void Table::write_csv(const std::string& path) const {
  std::ofstream f(path);
  if (!f) throw Error(path + ": cannot open for writing");
  auto line = [&](const std::vector<std::string>& row) {
    for (std::size_t c = 0; c < row.size(); ++c) f << (c ? "," : "") << row[c];
    f << "\n";
  };
  line(header_);
  for (const auto& r : rows_) line(r);
  if (!f) throw Error(path + ": write failed");
}

namespace {

// `number` through printf's `conversion` ("%.*f" or "%.*g") with `precision`; "-" for null.
std::string printed(const nlohmann::json& number, const char* conversion, int precision) {
  if (!number.is_number()) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, conversion, precision, number.get<double>());
  return buf;
}

}  // namespace

std::string fmt(const nlohmann::json& number, int digits) { return printed(number, "%.*f", digits); }

std::string fmt_significant(const nlohmann::json& number, int significant) {
  return printed(number, "%.*g", significant);
}

std::string autoscaler_name(const nlohmann::json& s) {
  if (!s.contains("autoscaling") || s["autoscaling"]["pools"].empty()) return "static";
  return s["autoscaling"]["pools"][0]["autoscaler"].get<std::string>();
}

long long scale_events(const nlohmann::json& s) {
  long long n = 0;
  if (!s.contains("autoscaling")) return 0;
  for (const auto& p : s["autoscaling"]["pools"]) {
    n += p["scale_ups"].get<long long>() + p["scale_downs"].get<long long>();
  }
  return n;
}

void print_summary(const nlohmann::json& s, std::ostream& out) {
  const auto& req = s["requests"];
  Table t({"metric", "mean", "p50", "p90", "p99"});
  for (const char* k : {"latency_ms", "ttft_ms", "tpot_ms", "queue_ms"}) {
    const auto& m = s[k];
    t.add({k, fmt(m["mean"]), fmt(m["p50"]), fmt(m["p90"]), fmt(m["p99"])});
  }
  out << "requests: " << req["total"] << " total, " << req["completed"] << " completed, " << req["rejected"]
      << " rejected, " << req["dropped"] << " dropped, " << req["timed_out"] << " timed out\n\n";
  t.print(out);
  out << "\nthroughput " << fmt(s["throughput_rps"], 2) << " req/s, " << fmt(s["tokens_per_s"], 0)
      << " output tokens/s, goodput " << fmt(s["goodput_rps"], 2) << " req/s, SLO attainment "
      << fmt(s["slo_attainment"].get<double>() * 100, 1) << "%\n";
  if (s.contains("cost")) {
    // Small runs cost fractions of a cent: significant digits, not fixed decimals.
    out << "fleet " << fmt_significant(s["cost"]["gpu_hours"]) << " GPU-hours, cost "
        << fmt_significant(s["cost"]["cost"]) << ", " << fmt_significant(s["cost"]["cost_per_million_requests"])
        << " per million requests\n";
  }
  if (s.contains("autoscaling")) {
    for (const auto& p : s["autoscaling"]["pools"]) {
      out << "autoscaling " << p["model"].get<std::string>() << " (" << p["autoscaler"].get<std::string>()
          << "): replicas " << p["min_replicas"] << ".." << p["max_replicas"] << ", mean " << fmt(p["mean_replicas"], 2)
          << ", peak " << p["peak_replicas"] << ", " << p["scale_ups"] << " scale-ups, " << p["scale_downs"]
          << " scale-downs\n";
    }
  }
  Table w({"worker", "utilization", "batches", "mean batch", "preemptions"});
  for (const auto& wk : s["workers"]) {
    w.add({wk["name"].get<std::string>(), fmt(wk["utilization"].get<double>() * 100, 1) + "%",
           std::to_string(wk["batches"].get<long long>()), fmt(wk["mean_batch_size"], 1),
           std::to_string(wk["preemptions"].get<long long>())});
  }
  out << "\n";
  w.print(out);
  if (s.contains("sim")) {
    const auto& sim = s["sim"];
    out << "\nsimulated " << fmt(sim["simulated_s"], 1) << " s in " << fmt(sim["wall_s"], 3) << " s wall, "
        << sim["events"] << " events\n";
  }
}

}  // namespace twinfer::cli
