#include "policies/cost/profile_cost_model.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "core/params.h"
#include "policies/cost/cost_table.h"

namespace twinfer {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "twinfer-profile-v1";
const std::array<const char*, 3> kIterationAxes = {"prefill_tokens", "decode_seqs", "decode_context_tokens"};
const std::array<const char*, 3> kBatchAxes = {"batch_size", "input_tokens", "max_output_tokens"};

std::vector<double> parse_axis(const json& values, const std::string& where) {
  if (!values.is_array() || values.empty()) throw Error(where + ": expected a non-empty array of numbers");
  std::vector<double> axis;
  for (const auto& v : values) {
    if (!v.is_number() || v.get<double>() < 0) {
      throw Error(where + ": expected non-negative numbers, got " + v.dump());
    }
    if (!axis.empty() && v.get<double>() <= axis.back()) throw Error(where + ": values must strictly increase");
    axis.push_back(v.get<double>());
  }
  return axis;
}

// Appends the values of `nested`, which must have the shape of axes[depth..2], to `out`.
void flatten_times(const json& nested, const std::array<std::vector<double>, 3>& axes, std::size_t depth,
                   const std::string& where, std::vector<double>& out) {
  if (depth == axes.size()) {
    if (!nested.is_number() || nested.get<double>() < 0) {
      throw Error(where + ": expected a non-negative time in microseconds, got " + nested.dump());
    }
    out.push_back(nested.get<double>());
    return;
  }
  if (!nested.is_array() || nested.size() != axes[depth].size()) {
    throw Error(where + ": expected an array of " + std::to_string(axes[depth].size()) +
                " elements (one per value of axis " + std::to_string(depth) + "), got " + nested.dump());
  }
  for (std::size_t i = 0; i < nested.size(); ++i) {
    flatten_times(nested[i], axes, depth + 1, where + "[" + std::to_string(i) + "]", out);
  }
}

ProfileCostModel::Grid parse_grid(const json& object, const std::array<const char*, 3>& names,
                                  const std::string& where) {
  JsonParams p(object, where, {names[0], names[1], names[2], "time_us"});
  p.done();
  ProfileCostModel::Grid grid;
  for (std::size_t d = 0; d < names.size(); ++d) {
    p.require(p.has(names[d]), names[d], "required");
    grid.axes[d] = parse_axis(object.at(names[d]), where + "." + names[d]);
  }
  p.require(p.has("time_us"), "time_us", "required");
  flatten_times(object.at("time_us"), grid.axes, 0, where + ".time_us", grid.time_us);
  return grid;
}

ProfileCostModel::Entry parse_entry(const json& object, const std::string& where) {
  ProfileCostModel::Entry e;
  JsonParams p(object, where, {"iteration", "batch"});
  const CostTableKey key = read_cost_table_key(p);
  p.done();
  e.device = key.device;
  e.model = key.model;
  e.tp = key.tp;
  p.require(p.has("iteration") || p.has("batch"), "iteration", "an entry needs \"iteration\", \"batch\" or both");
  if (p.has("iteration")) e.iteration = parse_grid(object.at("iteration"), kIterationAxes, where + ".iteration");
  if (p.has("batch")) e.batch = parse_grid(object.at("batch"), kBatchAxes, where + ".batch");
  return e;
}

// The segment of `axis` used for `x` and the position of x along it (outside [0, 1] beyond the ends).
struct Bracket {
  std::size_t low = 0;
  std::size_t high = 0;
  double t = 0;
};

Bracket bracket(const std::vector<double>& axis, double x) {
  if (axis.size() == 1) return Bracket{0, 0, 0};
  const auto upper = std::upper_bound(axis.begin(), axis.end(), x);
  const std::size_t high = std::clamp<std::size_t>(upper - axis.begin(), 1, axis.size() - 1);
  const std::size_t low = high - 1;
  return Bracket{low, high, (x - axis[low]) / (axis[high] - axis[low])};
}

TimeUs round_time_us(double time_us) { return std::max<TimeUs>(1, static_cast<TimeUs>(std::llround(time_us))); }

}  // namespace

double ProfileCostModel::Grid::at(const std::array<double, 3>& point) const {
  std::array<Bracket, 3> b;
  for (std::size_t d = 0; d < 3; ++d) b[d] = bracket(axes[d], point[d]);
  const std::size_t n1 = axes[1].size();
  const std::size_t n2 = axes[2].size();
  double sum = 0;
  for (int corner = 0; corner < 8; ++corner) {
    double weight = 1;
    std::array<std::size_t, 3> index;
    for (std::size_t d = 0; d < 3; ++d) {
      const bool upper = (corner >> d) & 1;
      weight *= upper ? b[d].t : 1 - b[d].t;
      index[d] = upper ? b[d].high : b[d].low;
    }
    if (weight != 0) sum += weight * time_us[(index[0] * n1 + index[1]) * n2 + index[2]];
  }
  return sum;
}

ProfileCostModel::ProfileCostModel(const nlohmann::json& table, std::string source) : source_(std::move(source)) {
  const json& entries = cost_table_entries(table, source_, kFormat);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string where = source_ + ": entries[" + std::to_string(i) + "]";
    Entry e = parse_entry(entries[i], where);
    add_unique_key(keys_, CostTableKey{e.device, e.model, e.tp}, where);
    entries_.push_back(std::move(e));
  }
}

ProfileCostModel ProfileCostModel::load(const std::string& path) {
  return ProfileCostModel(read_json_file(path, "the profile table"), path);
}

const ProfileCostModel::Entry* ProfileCostModel::find(const std::string& device, const std::string& model,
                                                      int tp) const {
  for (const auto& e : entries_) {
    if (e.device == device && e.model == model && e.tp == tp) return &e;
  }
  return nullptr;
}

const ProfileCostModel::Grid& ProfileCostModel::grid_for(const InstanceSpec& instance, bool iteration) const {
  const std::string key = CostTableKey::of(instance).name();
  const Entry* e = find(instance.device.name, instance.model.name, instance.tp());
  if (e == nullptr) throw_missing_entry("profile", source_, instance, keys_);
  const std::optional<Grid>& grid = iteration ? e->iteration : e->batch;
  if (!grid) {
    throw Error("profile cost model: " + source_ + ": the entry for " + key + " has no \"" +
                (iteration ? "iteration" : "batch") + "\" times");
  }
  return *grid;
}

TimeUs ProfileCostModel::iteration_time_us(const InstanceSpec& instance, const IterationShape& shape) const {
  const Grid& grid = grid_for(instance, true);
  return round_time_us(grid.at({static_cast<double>(shape.prefill_tokens), static_cast<double>(shape.decode_seqs),
                                static_cast<double>(shape.decode_context_tokens)}));
}

TimeUs ProfileCostModel::batch_time_us(const InstanceSpec& instance, const RequestBatchShape& shape) const {
  const Grid& grid = grid_for(instance, false);
  return round_time_us(grid.at({static_cast<double>(shape.batch_size), static_cast<double>(shape.input_tokens),
                                static_cast<double>(shape.max_output_tokens)}));
}

}  // namespace twinfer
