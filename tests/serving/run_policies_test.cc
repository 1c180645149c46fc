#include "serving/run_policies.h"

#include <functional>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::error_of;

// One host of 2 H100s serving a small model "m", with the given "protection" section.
RunConfig config_with(const nlohmann::json& protection) {
  nlohmann::json c = nlohmann::json::parse(R"({
    "cluster": {
      "models": {"m": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16}},
      "hosts": [{"name": "h", "device": "H100", "gpus": 2, "instances": [{"model": "m", "count": 2}]}]
    },
    "policies": {"admission": "accept_all", "router": "round_robin"}
  })");
  c["protection"] = protection;
  return parse_run_config(c, "");
}

TEST(MakeRunPolicies, BuildsEveryFrontEndPolicyAndTheShedding) {
  RunPolicies p = make_run_policies(config_with(nlohmann::json::object()), 7);
  ASSERT_TRUE(p.cost && p.admission && p.router && p.shed);
  EXPECT_EQ(p.admission->name(), "accept_all");
  EXPECT_EQ(p.router->name(), "round_robin");
  EXPECT_EQ(p.shed->name(), "accept_all");  // the default
  RunPolicies shed = make_run_policies(config_with({{"shed", {{"name", "priority_shed"}, {"levels", {4}}}}}), 7);
  EXPECT_EQ(shed.shed->name(), "priority_shed");
}

TEST(MakeRunPolicies, ShedErrorsNameProtectionShed) {
  const std::string e = error_of([] { make_run_policies(config_with({{"shed", "nope"}}), 1); });
  EXPECT_EQ(e.rfind("protection.shed: unknown admission 'nope'", 0), 0u) << e;
  EXPECT_NE(error_of([] { make_run_policies(config_with({{"shed", {{"name", "priority_shed"}, {"x", 1}}}}), 1); })
                .find("protection.shed (priority_shed): unknown key 'x'"),
            std::string::npos);
}

TEST(MakeRunPolicies, ARouterReadingKvEventsNeedsAWorkerThatCachesPrefixes) {
  RunConfig c = config_with(nlohmann::json::object());
  c.router = {{"name", "scored"}, {"scorers", {{{"name", "kv_events"}, {"weight", 1}}}}};
  c.batcher = {{"name", "continuous"}};
  EXPECT_EQ(error_of([&] { make_run_policies(c, 1); }),
            "policies.router (scored): reads the workers' KV events, but no worker caches prefixes "
            "(policies.batcher.prefix_caching)");
  c.batcher["prefix_caching"] = true;
  EXPECT_TRUE(make_run_policies(c, 1).router->reads_kv_events());
  c.batcher["prefix_caching"] = false;
  c.router = {{"name", "kv_overlap"}, {"use_kv_events", true}};
  EXPECT_NE(error_of([&] { make_run_policies(c, 1); }).find("policies.router (kv_overlap): reads"), std::string::npos);
}

}  // namespace
}  // namespace twinfer
