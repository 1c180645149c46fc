#include "serving/run_config.h"

#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "policies/cluster_view.h"
#include "policies/elastic/autoscaling_options.h"
#include "policies/registry.h"
#include "policies/routers/cost_aware_router.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::error_of;

TEST(ApplyOverride, SetsNestedKeysWithJsonValues) {
  nlohmann::json c = {{"policies", {{"batcher", {{"name", "continuous"}, {"max_num_seqs", 8}}}}}};
  apply_override(c, "policies.batcher.max_num_seqs=64");
  apply_override(c, "policies.batcher.chunked_prefill=false");
  apply_override(c, "workload.slo.ttft_ms=250.5");
  EXPECT_EQ(c["policies"]["batcher"]["max_num_seqs"], 64);
  EXPECT_EQ(c["policies"]["batcher"]["chunked_prefill"], false);
  EXPECT_EQ(c["workload"]["slo"]["ttft_ms"], 250.5);
}

TEST(ApplyOverride, NonJsonValueIsAString) {
  nlohmann::json c = nlohmann::json::object();
  apply_override(c, "policies.router=least_work");
  EXPECT_EQ(c["policies"]["router"], "least_work");
}

TEST(ApplyOverride, KeyUnderAPolicyNameTurnsItIntoAnObject) {
  nlohmann::json c = {{"policies", {{"router", "power_of_two"}}}};
  apply_override(c, "policies.router.choices=3");
  EXPECT_EQ(c["policies"]["router"], (nlohmann::json{{"name", "power_of_two"}, {"choices", 3}}));
}

TEST(ApplyOverride, IndexesArrays) {
  nlohmann::json c = {{"cluster", {{"hosts", {{{"name", "a"}}, {{"name", "b"}}}}}}};
  apply_override(c, "cluster.hosts.1.name=z");
  EXPECT_EQ(c["cluster"]["hosts"][1]["name"], "z");
  EXPECT_NE(error_of([&] { apply_override(c, "cluster.hosts.5.name=z"); }).find("'5' is not an index of an array of 2"),
            std::string::npos);
}

TEST(ApplyOverride, AnIndexTooLargeForAnyIntegerIsNotAnIndex) {
  nlohmann::json c = {{"a", {1, 2}}};
  EXPECT_EQ(error_of([&] { apply_override(c, "a.99999999999999999999999=3"); }),
            "--set a.99999999999999999999999: '99999999999999999999999' is not an index of an array of 2");
  apply_override(c, "a.01=5");  // leading zeros still name an index
  EXPECT_EQ(c["a"], (nlohmann::json{1, 5}));
}

TEST(ApplyOverride, RejectsAKeyOrValueThatIsNotUtf8) {
  nlohmann::json c = nlohmann::json::object();
  EXPECT_EQ(error_of([&] { apply_override(c, "cluster.hosts.0.g\xec\xecpus=2"); }), "--set: the key is not valid UTF-8");
  EXPECT_TRUE(c.empty()) << "nothing is set before the check";
  EXPECT_EQ(error_of([&] { apply_override(c, "sim.network=\xff\xfe"); }),
            "--set sim.network: the value is not valid UTF-8");
  apply_override(c, "sim.network=r\xc3\xa9seau");  // "réseau": valid UTF-8, kept as a string
  EXPECT_EQ(c["sim"]["network"], "r\xc3\xa9seau");
}

TEST(ApplyOverride, RejectsMalformedAssignments) {
  nlohmann::json c = nlohmann::json::object();
  EXPECT_NE(error_of([&] { apply_override(c, "novalue"); }).find("expected key=value"), std::string::npos);
  EXPECT_NE(error_of([&] { apply_override(c, "a..b=1"); }).find("empty key segment"), std::string::npos);
  c["n"] = 3;
  EXPECT_NE(error_of([&] { apply_override(c, "n.x=1"); }).find("'x' is under a number"), std::string::npos);
}

TEST(LoadRunConfig, NamesTheFileOnMissingOrBrokenJson) {
  EXPECT_NE(error_of([] { load_run_config("/nonexistent/c.json"); }).find("/nonexistent/c.json: cannot open"),
            std::string::npos);
  std::string path = ::testing::TempDir() + "/broken.json";
  std::ofstream(path) << "{\n  \"cluster\": {,\n}";
  std::string e = error_of([&] { load_run_config(path); });
  EXPECT_NE(e.find(path + ": invalid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
}

// One host of 2 H100s serving a small model "m".
nlohmann::json small_config() {
  return nlohmann::json::parse(R"({
    "cluster": {
      "models": {"m": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16}},
      "hosts": [{"name": "h", "device": "H100", "gpus": 2, "instances": [{"model": "m", "count": 2}]}]
    }
  })");
}

TEST(ParseRunConfig, ProtectionIsOptionalWithDefaults) {
  RunConfig rc = parse_run_config(small_config(), "");
  EXPECT_EQ(rc.protection.health.heartbeat.interval_us, 100'000);
  EXPECT_EQ(rc.protection.retry.max_attempts, 3);
  EXPECT_EQ(rc.protection.shed, nlohmann::json("accept_all"));
}

TEST(ParseRunConfig, ReadsProtectionAndNamesItsKeysInErrors) {
  nlohmann::json c = small_config();
  c["protection"] = {{"request_timeout_ms", 2000}, {"retry", {{"max_attempts", 1}}}, {"shed", "priority_shed"}};
  RunConfig rc = parse_run_config(c, "");
  EXPECT_EQ(rc.protection.request_timeout_us, 2'000'000);
  EXPECT_EQ(rc.protection.retry.max_attempts, 1);
  EXPECT_EQ(rc.protection.shed, nlohmann::json("priority_shed"));
  apply_override(c, "protection.retry.jitter=1.5");
  EXPECT_EQ(error_of([&] { parse_run_config(c, "c.json"); }), "c.json: protection.retry.jitter: must be in [0, 1]");
}

// The shipped autoscaling configs load whole (cluster, policies, autoscaler) with the pools and
// cold starts that bench/RESULTS.md describes: 10 s + 16.06 GB of Llama-3-8B at 2 GB/s.
TEST(ParseAutoscaling, TheShippedConfigsLoad) {
  struct Shipped {
    const char* name;
    std::size_t instances;
    int initial;
    const char* device;
  };
  for (const Shipped& c : {Shipped{"autoscaling_azure.json", 16, 8, "L4"}, Shipped{"autoscaling_code_h100.json", 8, 3, "H100"}}) {
    SCOPED_TRACE(c.name);
    RunConfig rc = load_run_config(std::string(TWINFER_SOURCE_DIR) + "/configs/" + c.name);
    ASSERT_TRUE(rc.autoscaling.enabled());
    EXPECT_EQ(rc.autoscaling.autoscaler["name"], "predictive");
    EXPECT_EQ(rc.cluster.instances.size(), c.instances);
    EXPECT_EQ(rc.cluster.instances[0].device.name, c.device);
    EXPECT_EQ(rc.autoscaling.min_replicas, 1);
    EXPECT_EQ(rc.autoscaling.max_replicas, int(c.instances));
    EXPECT_EQ(rc.autoscaling.initial_replicas, c.initial);
    EXPECT_EQ(rc.autoscaling.interval_us, 30'000'000);
    EXPECT_NEAR(s_from_us(cold_start_us(rc.autoscaling.cold_start, rc.cluster.instances[0])), 18.03, 0.01);
  }
}

// configs/edge_cloud.json: two free L4s at the edge (instances 0, 1), four priced H100s 40 ms away.
TEST(CostAwareRouterConfigTest, EdgeCloudUsesTheEdgeUntilItFallsBehind) {
  RunConfig config = load_run_config(std::string(TWINFER_SOURCE_DIR) + "/configs/edge_cloud.json");
  PolicyContext ctx;
  ctx.slo = &config.workload.slo;
  auto cost = cost_model_registry().make(config.cost_model, ctx, "policies.cost_model");
  ctx.cost = cost.get();
  auto router = router_registry().make(config.router, ctx, "policies.router");
  ASSERT_EQ(router->name(), "cost_aware");
  std::vector<WorkerView> workers;
  for (const InstanceSpec& inst : config.cluster.instances) {
    WorkerView w;
    w.index = inst.index;
    w.instance = &inst;
    workers.push_back(w);
  }
  ClusterView view{0, &workers};
  const Request request = testing::make_request(1, 0, 500, 100, "llama-3-8b");
  int first = router->route(request, view).worker;
  ASSERT_GE(first, 0);
  EXPECT_EQ(workers[first].instance->device.name, "L4");
  // Both edge workers hold a minute of queued work: the request goes to the cloud.
  workers[0].outstanding_work_us = 60000000;
  workers[1].outstanding_work_us = 60000000;
  int spilled = router->route(request, view).worker;
  ASSERT_GE(spilled, 0);
  EXPECT_EQ(workers[spilled].instance->device.name, "H100");
  EXPECT_GT(CostAwareRouter::price_per_hour(workers[spilled]), 0);
}

}  // namespace
}  // namespace twinfer
