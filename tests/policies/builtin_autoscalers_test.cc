// The autoscaler registry: every built-in by name, its parameters, and the errors naming keys.
#include <gtest/gtest.h>

#include "core/slo.h"
#include "policies/registry.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using nlohmann::json;
using testing::FakeCostModel;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string error_of(const json& spec, const PolicyContext& ctx) {
  try {
    autoscaler_registry().make(spec, ctx, "pools.a.autoscaler");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << spec.dump();
  return "";
}

class BuiltinAutoscalersTest : public ::testing::Test {
 protected:
  BuiltinAutoscalersTest() {
    ctx.cost = &cost;
    inst.name = "w0";
    inst.gpus = {0};
    inst.device = testing::test_device();
    inst.model = testing::test_model();
  }
  PoolSample sample(int ready) const {
    PoolSample s;
    s.now_us = 0;
    s.interval_us = 10 * kUsPerS;
    s.ready = ready;
    s.min_replicas = 1;
    s.max_replicas = 50;
    s.instance = &inst;
    return s;
  }
  FakeCostModel cost;
  PolicyContext ctx;
  InstanceSpec inst;
};

TEST_F(BuiltinAutoscalersTest, EveryBuiltinBuildsFromItsName) {
  const std::vector<std::string> expected = {"predictive", "queue_depth", "target_utilization"};
  EXPECT_EQ(autoscaler_registry().names(), expected);
  for (const std::string& name : expected) {
    auto a = autoscaler_registry().make(json(name), ctx, "pools.a.autoscaler");
    ASSERT_NE(a, nullptr) << name;
    EXPECT_EQ(a->name(), name);
  }
}

TEST_F(BuiltinAutoscalersTest, TargetUtilizationReadsItsParameters) {
  json spec = {{"name", "target_utilization"}, {"target", 0.5},   {"metric", "kv"},
               {"tolerance", 0.05},            {"scale_up_stabilization_s", 0},
               {"scale_down_stabilization_s", 0}, {"max_scale_up_step", 1}};
  auto a = autoscaler_registry().make(spec, ctx, "pools.a.autoscaler");
  PoolSample s = sample(2);
  s.kv_used_fraction = 1.0;  // 4 wanted; the step limit allows 1 more
  s.utilization = 0.0;
  EXPECT_EQ(a->decide(s).desired, 3);
  s.now_us = 10 * kUsPerS;
  s.ready = 3;
  s.kv_used_fraction = 0.53;  // ratio 1.06: outside a 0.05 tolerance, ceil(3.18)
  EXPECT_EQ(a->decide(s).desired, 4);
}

TEST_F(BuiltinAutoscalersTest, QueueDepthReadsItsParameters) {
  json spec = {{"name", "queue_depth"}, {"target_per_replica", 2}, {"metric", "outstanding"},
               {"activation", 1},      {"scale_down_stabilization_s", 0}};
  auto a = autoscaler_registry().make(spec, ctx, "pools.a.autoscaler");
  PoolSample s = sample(1);
  s.waiting = 3;
  s.running = 3;
  EXPECT_EQ(a->decide(s).desired, 3);  // 6 / 2
}

TEST_F(BuiltinAutoscalersTest, PredictiveTakesTpotFromTheSloOverTheParameter) {
  SloSpec slo;
  slo.tpot_ms = 5;  // batch 40: 307.7 req/s per replica
  PolicyContext with_slo = ctx;
  with_slo.slo = &slo;
  json spec = {{"name", "predictive"}, {"tpot_ms", 1000}, {"headroom", 0}, {"target_utilization", 1.0}};
  auto a = autoscaler_registry().make(spec, with_slo, "pools.a.autoscaler");
  PoolSample s = sample(1);
  s.arrivals = 6160;  // 616 req/s: ceil(616 / 307.7) = 3
  s.mean_input_tokens = 100;
  s.mean_output_tokens = 10;
  auto d = a->decide(s);
  EXPECT_EQ(d.desired, 3);
  EXPECT_TRUE(contains(d.reason, "batch 40")) << d.reason;
  // Without an SLO the parameter bounds the batch: 1000 ms lets it reach max_batch.
  auto b = autoscaler_registry().make(spec, ctx, "pools.a.autoscaler");
  EXPECT_TRUE(contains(b->decide(s).reason, "batch 256")) << "tpot_ms parameter ignored";
}

TEST_F(BuiltinAutoscalersTest, PredictiveWithoutACostModelIsAClearError) {
  PolicyContext no_cost;
  std::string e = error_of(json("predictive"), no_cost);
  EXPECT_TRUE(contains(e, "pools.a.autoscaler (predictive): predictive needs a cost model")) << e;
}

TEST_F(BuiltinAutoscalersTest, UnknownKeysAreRejectedByName) {
  for (const char* name : {"target_utilization", "queue_depth", "predictive"}) {
    std::string e = error_of(json{{"name", name}, {"targte", 0.5}}, ctx);
    EXPECT_TRUE(contains(e, "unknown key 'targte'")) << e;
  }
}

TEST_F(BuiltinAutoscalersTest, OutOfRangeValuesNameTheirKey) {
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"name", "target_utilization"}, {"target", 1.5}}, "(target_utilization).target: must be in (0, 1]"},
      {{{"name", "target_utilization"}, {"target", 0}}, "(target_utilization).target: must be in (0, 1]"},
      {{{"name", "target_utilization"}, {"metric", "gpu"}}, "(target_utilization).metric: must be"},
      {{{"name", "target_utilization"}, {"tolerance", -0.1}}, "(target_utilization).tolerance: must be >= 0"},
      {{{"name", "queue_depth"}, {"target_per_replica", 0}}, "(queue_depth).target_per_replica: must be > 0"},
      {{{"name", "queue_depth"}, {"metric", "running"}}, "(queue_depth).metric: must be"},
      {{{"name", "queue_depth"}, {"activation", -1}}, "(queue_depth).activation: must be >= 0"},
      {{{"name", "queue_depth"}, {"scale_down_stabilization_s", -5}}, "(queue_depth).scale_down_stabilization_s"},
      {{{"name", "predictive"}, {"forecast", "arima"}}, "(predictive).forecast: must be \"holt\" or \"ewma\""},
      {{{"name", "predictive"}, {"alpha", 0}}, "(predictive).alpha: must be in (0, 1]"},
      {{{"name", "predictive"}, {"beta", 1.5}}, "(predictive).beta: must be in [0, 1]"},
      {{{"name", "predictive"}, {"headroom", -0.1}}, "(predictive).headroom: must be >= 0"},
      {{{"name", "predictive"}, {"target_utilization", 1.2}}, "(predictive).target_utilization: must be in (0, 1]"},
      {{{"name", "predictive"}, {"max_batch", 0}}, "(predictive).max_batch: must be >= 1"},
      {{{"name", "predictive"}, {"gpu_memory_utilization", 0}}, "(predictive).gpu_memory_utilization"},
      {{{"name", "predictive"}, {"tpot_ms", -1}}, "(predictive).tpot_ms: must be >= 0"},
  };
  for (const auto& [spec, expected] : cases) {
    std::string e = error_of(spec, ctx);
    EXPECT_TRUE(contains(e, expected)) << spec.dump() << " -> " << e;
  }
}

TEST_F(BuiltinAutoscalersTest, WrongTypesNameTheirKey) {
  std::string e = error_of(json{{"name", "queue_depth"}, {"target_per_replica", "four"}}, ctx);
  EXPECT_TRUE(contains(e, "(queue_depth).target_per_replica: expected a number")) << e;
}

}  // namespace
}  // namespace twinfer
