// The traffic split registry and its built-in splits.
#include <gtest/gtest.h>

#include "policies/registry.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using nlohmann::json;
using testing::make_request;

std::string build_error(const json& spec) {
  try {
    traffic_split_registry().make(spec, PolicyContext{}, "policies.traffic_split");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(BuiltinSplitsTest, WeightedBuildsFromItsParameters) {
  EXPECT_EQ(traffic_split_registry().names(), std::vector<std::string>{"weighted"});
  PolicyContext ctx;
  ctx.seed = 5;
  auto split = traffic_split_registry().make(json{{"name", "weighted"}, {"weights", {{"b", 1}}}}, ctx,
                                             "policies.traffic_split");
  ASSERT_NE(split, nullptr);
  EXPECT_EQ(split->name(), "weighted");
  EXPECT_EQ(split->pick(make_request(1), {"a", "b"}, {true, true}, 0), "b");
}

TEST(BuiltinSplitsTest, ErrorsNameTheSplitAndKey) {
  EXPECT_EQ(build_error(json{{"name", "canary"}}), "policies.traffic_split: unknown traffic split 'canary'; valid: weighted");
  EXPECT_EQ(build_error(json("weighted")),
            "policies.traffic_split (weighted).weights: required unless the schedule's first step is at_s 0");
  EXPECT_EQ(build_error(json{{"name", "weighted"}, {"weights", {{"a", 1}}}, {"seed", 1}}),
            "policies.traffic_split (weighted): unknown key 'seed'; valid keys: schedule, sticky, weights");
}

}  // namespace
}  // namespace twinfer
