// Registry tests for the built-in routers and admission policies.
#include "policies/registry.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using nlohmann::json;
using testing::FakeCostModel;

// The message of the Error that building `spec` throws; fails the test when nothing is thrown.
template <class T>
std::string error_of(const PolicyRegistry<T>& registry, const json& spec, const PolicyContext& ctx) {
  try {
    registry.make(spec, ctx, "policies.x");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << spec.dump();
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

class RegistryTest : public ::testing::Test {
 protected:
  RegistryTest() { ctx.cost = &cost; }
  FakeCostModel cost;
  PolicyContext ctx;
};

TEST_F(RegistryTest, EveryBuiltinRouterBuildsFromItsName) {
  const std::vector<std::string> expected = {"cache_aware",  "consistent_hash", "cost_aware",   "kv_overlap",
                                             "least_outstanding", "least_work", "multi_resource", "power_of_two",
                                             "queue_feedback", "random",     "round_robin",    "scored"};
  EXPECT_EQ(router_registry().names(), expected);
  for (const std::string& name : expected) {
    auto router = router_registry().make(json{{"name", name}}, ctx, "policies.router");
    ASSERT_NE(router, nullptr) << name;
    EXPECT_EQ(router->name(), name);
  }
  EXPECT_EQ(router_registry().make(json("round_robin"), ctx, "policies.router")->name(), "round_robin");
}

TEST_F(RegistryTest, RoutersAcceptTheirParameters) {
  json specs = json::array({
      {{"name", "random"}, {"seed", 3}},
      {{"name", "power_of_two"}, {"choices", 3}, {"seed", 4}},
      {{"name", "queue_feedback"}, {"max_weight", 50.0}, {"min_weight", 0.5}, {"seed", 5}},
      {{"name", "multi_resource"}, {"w_util", 2}, {"w_kv", 0.5}, {"w_queue", 1}, {"queue_norm", 8}},
      {{"name", "consistent_hash"}, {"virtual_nodes", 10}, {"key", "model"}, {"bounded_load", 1.25}},
      {{"name", "scored"}, {"scorers", {{{"name", "kv"}, {"weight", 1}}, {{"name", "work"}, {"weight", 0.5}}}},
       {"picker", "softmax"}, {"temperature", 0.2}, {"seed", 2}, {"block_tokens", 32}, {"refresh_ms", 50}},
      {{"name", "cache_aware"}, {"cache_threshold", 0.3}, {"balance_abs_threshold", 8}, {"balance_rel_threshold", 1.5},
       {"block_tokens", 64}},
      {{"name", "kv_overlap"}, {"overlap_score_weight", 2}, {"temperature", 0.5}, {"seed", 9}, {"block_tokens", 16}},
  });
  for (const json& spec : specs) EXPECT_NO_THROW(router_registry().make(spec, ctx, "policies.router")) << spec;
}

TEST_F(RegistryTest, UnknownRouterNameListsTheValidOnes) {
  std::string e = error_of(router_registry(), json{{"name", "fastest"}}, ctx);
  EXPECT_TRUE(contains(e, "policies.x: unknown router 'fastest'")) << e;
  EXPECT_TRUE(contains(e, "cache_aware, consistent_hash, cost_aware, kv_overlap, least_outstanding, least_work")) << e;
}

TEST_F(RegistryTest, UnknownRouterKeyNamesItAndTheValidKeys) {
  std::string e = error_of(router_registry(), json{{"name", "consistent_hash"}, {"vnodes", 5}}, ctx);
  EXPECT_TRUE(contains(e, "unknown key 'vnodes'")) << e;
  EXPECT_TRUE(contains(e, "valid keys: bounded_load, key, virtual_nodes")) << e;
  e = error_of(router_registry(), json{{"name", "round_robin"}, {"seed", 1}}, ctx);
  EXPECT_TRUE(contains(e, "unknown key 'seed'; valid keys: (none)")) << e;
}

TEST_F(RegistryTest, WrongRouterParameterTypeOrValueNamesTheKey) {
  std::string e = error_of(router_registry(), json{{"name", "power_of_two"}, {"choices", "two"}}, ctx);
  EXPECT_TRUE(contains(e, "policies.x (power_of_two).choices: expected an integer")) << e;
  e = error_of(router_registry(), json{{"name", "power_of_two"}, {"choices", 0}}, ctx);
  EXPECT_TRUE(contains(e, ".choices: must be at least 1")) << e;
  e = error_of(router_registry(), json{{"name", "consistent_hash"}, {"key", "user"}}, ctx);
  EXPECT_TRUE(contains(e, ".key: must be \"session\" or \"model\"")) << e;
  e = error_of(router_registry(), json{{"name", "consistent_hash"}, {"bounded_load", 0.5}}, ctx);
  EXPECT_TRUE(contains(e, ".bounded_load:")) << e;
  e = error_of(router_registry(), json{{"name", "multi_resource"}, {"queue_norm", 0}}, ctx);
  EXPECT_TRUE(contains(e, ".queue_norm: must be > 0")) << e;
  e = error_of(router_registry(), json{{"name", "queue_feedback"}, {"min_weight", 0}}, ctx);
  EXPECT_TRUE(contains(e, ".min_weight: must be > 0")) << e;
}

TEST_F(RegistryTest, LeastWorkNeedsACostModel) {
  PolicyContext no_cost;
  std::string e = error_of(router_registry(), json{{"name", "least_work"}}, no_cost);
  EXPECT_TRUE(contains(e, "least_work needs a cost model")) << e;
}

TEST_F(RegistryTest, EveryBuiltinAdmissionBuilds) {
  const std::vector<std::string> expected = {"accept_all", "deadline", "priority_shed", "queue_bound", "token_bucket"};
  EXPECT_EQ(admission_registry().names(), expected);
  // Names alone, except where a parameter has no sensible default.
  const json specs = json::array({
      {{"name", "accept_all"}},
      {{"name", "deadline"}},
      {{"name", "priority_shed"}},
      {{"name", "queue_bound"}, {"max_waiting", 8}},
      {{"name", "token_bucket"}, {"rate_per_s", 100}},
  });
  for (const json& spec : specs) {
    auto admission = admission_registry().make(spec, ctx, "policies.admission");
    ASSERT_NE(admission, nullptr) << spec;
    EXPECT_EQ(admission->name(), spec["name"]);
  }
  EXPECT_NO_THROW(admission_registry().make(
      json{{"name", "deadline"}, {"predictive", false}, {"default_deadline_ms", 250}}, PolicyContext{}, "a"));
  EXPECT_NO_THROW(admission_registry().make(
      json{{"name", "token_bucket"}, {"rate_per_s", 5.5}, {"burst", 20}, {"cost", "tokens"}}, ctx, "a"));
  EXPECT_NO_THROW(admission_registry().make(
      json{{"name", "queue_bound"}, {"max_waiting", 4}, {"max_total_waiting", 64}}, ctx, "a"));
}

TEST_F(RegistryTest, AdmissionErrorsNameWhatIsWrong) {
  std::string e = error_of(admission_registry(), json{{"name", "leaky_bucket"}}, ctx);
  EXPECT_TRUE(contains(e, "unknown admission 'leaky_bucket'; valid: accept_all, deadline, priority_shed, queue_bound, "
                          "token_bucket"))
      << e;
  e = error_of(admission_registry(), json{{"name", "token_bucket"}}, ctx);
  EXPECT_TRUE(contains(e, "policies.x (token_bucket).rate_per_s: required")) << e;
  e = error_of(admission_registry(), json{{"name", "token_bucket"}, {"rate_per_s", 10}, {"rate", 1}}, ctx);
  EXPECT_TRUE(contains(e, "unknown key 'rate'; valid keys: burst, cost, rate_per_s")) << e;
  e = error_of(admission_registry(), json{{"name", "deadline"}, {"predictive", "yes"}}, ctx);
  EXPECT_TRUE(contains(e, "policies.x (deadline).predictive: expected a boolean")) << e;
  e = error_of(admission_registry(), json{{"name", "queue_bound"}}, ctx);
  EXPECT_TRUE(contains(e, "needs max_waiting or max_total_waiting")) << e;
}

}  // namespace
}  // namespace twinfer
