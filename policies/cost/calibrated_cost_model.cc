#include "policies/cost/calibrated_cost_model.h"

#include "core/error.h"
#include "core/json_file.h"
#include "core/params.h"

namespace twinfer {
namespace {

using nlohmann::json;

constexpr const char* kFormat = "twinfer-cost-v1";

// Scale of each of kFittedCoefficients from its file unit to seconds per unit.
constexpr std::array<double, kFittedCoefficients.size()> kUnitScale = {1e-6,  1e-6,  1e-12, 1e-12, 1e-12,
                                                                       1e-12, 1e-12, 1e-12, 1e6,   1};

std::array<double*, kFittedCoefficients.size()> fields(StepCoefficients& c) {
  return {&c.step_s,         &c.sequence_s,       &c.linear_s_per_flop,       &c.attention_s_per_flop,
          &c.weights_s_per_byte, &c.kv_s_per_byte,  &c.spill_s_per_byte, &c.gemm_weights_s_per_byte,
          &c.cache_bytes,    &c.contention};
}

CalibratedCostModel::Entry parse_entry(const json& object, const std::string& where) {
  CalibratedCostModel::Entry e;
  JsonParams p(object, where, {"coefficients", "fit"});
  e.key = read_cost_table_key(p);
  p.done();
  p.require(p.has("coefficients") && object.at("coefficients").is_object(), "coefficients",
            "required: an object of the fitted coefficients");
  const json& coef = object.at("coefficients");
  JsonParams q(coef, where + ".coefficients", {});
  auto targets = fields(e.coefficients);
  for (std::size_t i = 0; i < kFittedCoefficients.size(); ++i) {
    const char* name = kFittedCoefficients[i];
    q.require(q.has(name), name, "required");
    double v = 0;
    q.get(name, v);
    q.require(std::isfinite(v) && v >= 0, name, "must be a finite number >= 0");
    *targets[i] = v * kUnitScale[i];
  }
  q.done();
  return e;
}

}  // namespace

json coefficients_json(const StepCoefficients& c_in) {
  StepCoefficients c = c_in;
  json j = json::object();
  auto values = fields(c);
  for (std::size_t i = 0; i < kFittedCoefficients.size(); ++i) j[kFittedCoefficients[i]] = *values[i] / kUnitScale[i];
  return j;
}

CalibratedCostModel::CalibratedCostModel(const json& table, std::string source, bool static_padding)
    : source_(std::move(source)), static_padding_(static_padding) {
  const json& entries = cost_table_entries(table, source_, kFormat);
  std::vector<CostTableKey> keys;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const std::string where = source_ + ": entries[" + std::to_string(i) + "]";
    Entry e = parse_entry(entries[i], where);
    add_unique_key(keys, e.key, where);
    entries_.push_back(std::move(e));
  }
}

CalibratedCostModel CalibratedCostModel::load(const std::string& path, bool static_padding) {
  return CalibratedCostModel(read_json_file(path, "the cost-model file"), path, static_padding);
}

StepCoefficients CalibratedCostModel::coefficients(const InstanceSpec& instance) const {
  for (const Entry& e : entries_) {
    if (e.key.matches(instance)) {
      StepCoefficients c = e.coefficients;
      set_comm_terms(instance, c);
      return c;
    }
  }
  std::vector<CostTableKey> keys;
  for (const Entry& e : entries_) keys.push_back(e.key);
  throw_missing_entry("calibrated", source_, instance, keys);
}

TimeUs CalibratedCostModel::iteration_time_us(const InstanceSpec& instance, const IterationShape& shape) const {
  return round_step_us(step_seconds(coefficients(instance), ModelTerms::of(instance.model), step_work(shape)));
}

void CalibratedCostModel::decode_times_us(const InstanceSpec& instance, std::int64_t seqs, std::int64_t context_tokens,
                                          std::int64_t steps, std::vector<TimeUs>& out) const {
  twinfer::decode_times_us(coefficients(instance), ModelTerms::of(instance.model), seqs, context_tokens, steps, out);
}

double CalibratedCostModel::contention(const InstanceSpec& instance) const { return coefficients(instance).contention; }

TimeUs CalibratedCostModel::batch_time_us(const InstanceSpec& instance, const RequestBatchShape& shape) const {
  return round_step_us(
      request_batch_seconds(coefficients(instance), ModelTerms::of(instance.model), shape, static_padding_));
}

}  // namespace twinfer
