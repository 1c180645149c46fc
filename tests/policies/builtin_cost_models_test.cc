#include <gtest/gtest.h>

#include "policies/cost/profile_cost_model.h"
#include "policies/cost/roofline_cost_model.h"
#include "policies/registry.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using nlohmann::json;

std::string error_of(const json& spec, const PolicyContext& ctx = {}) {
  try {
    cost_model_registry().make(spec, ctx, "policies.cost_model");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BuiltinCostModelsTest, RegistersRooflineProfileAndCalibrated) {
  EXPECT_EQ(cost_model_registry().names(), (std::vector<std::string>{"calibrated", "profile", "roofline"}));
}

TEST(BuiltinCostModelsTest, RooflineReadsItsOptions) {
  auto model = cost_model_registry().make(
      json::parse(R"({"name": "roofline", "iteration_overhead_us": 50, "batch_overhead_us": 7,
                      "compute_efficiency": 0.5, "bandwidth_efficiency": 0.25, "static_padding": false})"),
      {}, "policies.cost_model");
  auto* roofline = dynamic_cast<RooflineCostModel*>(model.get());
  ASSERT_NE(roofline, nullptr);
  EXPECT_EQ(roofline->name(), "roofline");
  EXPECT_DOUBLE_EQ(roofline->options().iteration_overhead_us, 50);
  EXPECT_DOUBLE_EQ(roofline->options().batch_overhead_us, 7);
  EXPECT_DOUBLE_EQ(roofline->options().compute_efficiency, 0.5);
  EXPECT_DOUBLE_EQ(roofline->options().bandwidth_efficiency, 0.25);
  EXPECT_FALSE(roofline->options().static_padding);
}

TEST(BuiltinCostModelsTest, RooflineByNameHasTheDefaults) {
  auto model = cost_model_registry().make("roofline", {}, "policies.cost_model");
  auto* roofline = dynamic_cast<RooflineCostModel*>(model.get());
  ASSERT_NE(roofline, nullptr);
  EXPECT_DOUBLE_EQ(roofline->options().iteration_overhead_us, 200);
  EXPECT_TRUE(roofline->options().static_padding);
}

TEST(BuiltinCostModelsTest, RooflineRejectsBadOptions) {
  EXPECT_NE(error_of(json::parse(R"({"name": "roofline", "overhead_us": 1})"))
                .find("policies.cost_model (roofline): unknown key 'overhead_us'"),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"name": "roofline", "compute_efficiency": 1.5})"))
                .find("policies.cost_model (roofline).compute_efficiency: must be in [0, 1]"),
            std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"name": "roofline", "iteration_overhead_us": -1})"))
                .find("iteration_overhead_us: must not be negative"),
            std::string::npos);
}

TEST(BuiltinCostModelsTest, ProfileResolvesRelativePathsAgainstBaseDir) {
  PolicyContext ctx;
  ctx.base_dir = std::string(TWINFER_SOURCE_DIR) + "/configs";
  auto model =
      cost_model_registry().make(json::parse(R"({"name": "profile", "path": "profiles/example_profile.json"})"),
                                 ctx, "policies.cost_model");
  auto* profile = dynamic_cast<ProfileCostModel*>(model.get());
  ASSERT_NE(profile, nullptr);
  EXPECT_EQ(profile->source(), ctx.base_dir + "/profiles/example_profile.json");
  EXPECT_NE(profile->find("CPU", "tiny-llm", 1), nullptr);
}

TEST(BuiltinCostModelsTest, ProfileKeepsAbsolutePaths) {
  PolicyContext ctx;
  ctx.base_dir = "/nonexistent";
  const std::string path = std::string(TWINFER_SOURCE_DIR) + "/configs/profiles/example_profile.json";
  auto model = cost_model_registry().make(json{{"name", "profile"}, {"path", path}}, ctx, "policies.cost_model");
  EXPECT_EQ(dynamic_cast<ProfileCostModel*>(model.get())->source(), path);
}

TEST(BuiltinCostModelsTest, ProfileNeedsAReadablePath) {
  EXPECT_NE(error_of("profile").find("policies.cost_model (profile).path: required"), std::string::npos);
  PolicyContext ctx;
  ctx.base_dir = "/nonexistent";
  EXPECT_NE(error_of(json::parse(R"({"name": "profile", "path": "p.json"})"), ctx)
                .find("/nonexistent/p.json: cannot open the profile table"),
            std::string::npos);
}

}  // namespace
}  // namespace twinfer
