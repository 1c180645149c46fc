// Results tables printed by the twinfer subcommands.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace twinfer::cli {

// A plain text table with a header row; columns are right-aligned except the first ones named in
// `left_columns`. Also writes itself as CSV.
class Table {
 public:
  Table(std::vector<std::string> header, int left_columns = 1);
  void add(std::vector<std::string> row);
  void print(std::ostream& out) const;
  void write_csv(const std::string& path) const;

 private:
  std::vector<std::string> header_;
  int left_columns_;
  std::vector<std::vector<std::string>> rows_;
};

// "12.3" with `digits` decimals; "-" for null.
std::string fmt(const nlohmann::json& number, int digits = 1);
// `number` to `significant` significant digits ("0.0309", "4.05", "1.28e+03"); "-" for null.
std::string fmt_significant(const nlohmann::json& number, int significant = 3);

// The autoscaler of a run's summary ("static" without autoscaling) and its scale decisions over
// every pool.
std::string autoscaler_name(const nlohmann::json& summary);
long long scale_events(const nlohmann::json& summary);

// The headline figures of one run's summary.json, as a two-column table.
void print_summary(const nlohmann::json& summary, std::ostream& out);

}  // namespace twinfer::cli
