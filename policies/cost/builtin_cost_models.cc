// The cost_model registry and its built-in models: "roofline", "profile" and "calibrated".
#include "policies/cost/calibrated_cost_model.h"
#include "policies/cost/profile_cost_model.h"
#include "policies/cost/roofline_cost_model.h"
#include "policies/registry.h"

namespace twinfer {
namespace {

std::unique_ptr<CostModel> make_roofline(JsonParams& p, const PolicyContext&) {
  RooflineCostModel::Options opts;
  p.get("iteration_overhead_us", opts.iteration_overhead_us);
  p.get("batch_overhead_us", opts.batch_overhead_us);
  p.get("compute_efficiency", opts.compute_efficiency);
  p.get("bandwidth_efficiency", opts.bandwidth_efficiency);
  p.get("static_padding", opts.static_padding);
  p.done();
  p.require(opts.iteration_overhead_us >= 0, "iteration_overhead_us", "must not be negative");
  p.require(opts.batch_overhead_us >= 0, "batch_overhead_us", "must not be negative");
  p.require(opts.compute_efficiency >= 0 && opts.compute_efficiency <= 1, "compute_efficiency",
            "must be in [0, 1] (0: the device's)");
  p.require(opts.bandwidth_efficiency >= 0 && opts.bandwidth_efficiency <= 1, "bandwidth_efficiency",
            "must be in [0, 1] (0: the device's)");
  return std::make_unique<RooflineCostModel>(opts);
}

// Relative paths are relative to the config file's folder.
std::string resolve_path(const std::string& path, const std::string& base_dir) {
  if (path.empty() || path.front() == '/' || base_dir.empty()) return path;
  return base_dir.back() == '/' ? base_dir + path : base_dir + "/" + path;
}

std::unique_ptr<CostModel> make_profile(JsonParams& p, const PolicyContext& ctx) {
  std::string path;
  p.get("path", path);
  p.done();
  p.require(!path.empty(), "path", "required: the profile table file");
  return std::make_unique<ProfileCostModel>(ProfileCostModel::load(resolve_path(path, ctx.base_dir)));
}

std::unique_ptr<CostModel> make_calibrated(JsonParams& p, const PolicyContext& ctx) {
  std::string path;
  bool static_padding = true;
  p.get("path", path);
  p.get("static_padding", static_padding);
  p.done();
  p.require(!path.empty(), "path", "required: the cost-model file (twinfer calibrate, twinfer profile)");
  return std::make_unique<CalibratedCostModel>(CalibratedCostModel::load(resolve_path(path, ctx.base_dir), static_padding));
}

void register_builtin_cost_models(PolicyRegistry<CostModel>& registry) {
  registry.add("roofline", make_roofline);
  registry.add("profile", make_profile);
  registry.add("calibrated", make_calibrated);
}

}  // namespace

PolicyRegistry<CostModel>& cost_model_registry() {
  static PolicyRegistry<CostModel>& registry = builtin_registry<CostModel>("cost model", register_builtin_cost_models);
  return registry;
}

}  // namespace twinfer
