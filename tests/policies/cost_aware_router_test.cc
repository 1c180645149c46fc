#include "core/slo.h"
#include "policies/routers/cost_aware_router.h"

#include <deque>
#include <string>

#include <gtest/gtest.h>

#include "policies/registry.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using nlohmann::json;
using testing::FakeCostModel;
using testing::make_request;
using testing::test_device;
using testing::test_model;
using testing::ViewBuilder;

DeviceProfile priced(const std::string& name, double tflops, double price_per_hour) {
  DeviceProfile d = test_device(name, tflops);
  d.price_per_hour = price_per_hour;
  return d;
}

// ViewBuilder's instances have no NIC latency; this gives worker `i` its own copy with one.
class Placed {
 public:
  void set_nic_latency(ViewBuilder& b, int i, double latency_us) {
    instances_.push_back(b.instance(i));
    instances_.back().nic = LinkSpec{25, latency_us};
    b.worker(i).instance = &instances_.back();
  }

 private:
  std::deque<InstanceSpec> instances_;
};

// FakeCostModel: a request of 100 input and 10 output tokens costs 1000 + 10*100 + 100*10 = 3000 us
// on a 100-TFLOPS device and 4x that, 12000 us, on a 25-TFLOPS one.
// Worker 0, "EDGE": 25 TFLOPS, free, 50 us away (round trip 100 us): 12100 us when idle.
// Worker 1, "CLOUD": 100 TFLOPS, 4 per hour, 40 ms away (round trip 80000 us): 83000 us when idle.
// The bound: 100 ms less 10% headroom = 90000 us.
class CostAwareRouterTest : public ::testing::Test {
 protected:
  CostAwareRouterTest() {
    b.add_worker(priced("EDGE", 25, 0)).add_worker(priced("CLOUD", 100, 4));
    placed.set_nic_latency(b, 0, 50);
    placed.set_nic_latency(b, 1, 40000);
  }
  static CostAwareRouter::Options bound_ms(double latency_ms) {
    CostAwareRouter::Options o;
    o.latency_ms = latency_ms;
    return o;
  }
  int route(CostAwareRouter& r) { return r.route(make_request(1, 0, 100, 10), b.view()).worker; }

  FakeCostModel cost;
  ViewBuilder b;
  Placed placed;
  CostAwareRouter router{cost, bound_ms(100)};
};

TEST_F(CostAwareRouterTest, PredictsRoundTripPlusQueuedWorkPlusTheRequest) {
  b.worker(0).outstanding_work_us = 500;
  EXPECT_EQ(router.predicted_latency_us(make_request(1, 0, 100, 10), b.worker(0)), 100 + 500 + 12000);
  EXPECT_EQ(router.predicted_latency_us(make_request(1, 0, 100, 10), b.worker(1)), 80000 + 3000);
  EXPECT_EQ(router.bound_us(), 90000);
  EXPECT_DOUBLE_EQ(CostAwareRouter::price_per_hour(b.worker(0)), 0);
  EXPECT_DOUBLE_EQ(CostAwareRouter::price_per_hour(b.worker(1)), 4);
  EXPECT_EQ(router.name(), "cost_aware");
}

TEST_F(CostAwareRouterTest, SpillsToTheCloudOnceTheEdgeQueueMissesTheBound) {
  b.worker(0).outstanding_work_us = 77900;  // 100 + 77900 + 12000 = 90000: just meets it
  EXPECT_EQ(route(router), 0);
  b.worker(0).outstanding_work_us = 77901;  // 90001
  EXPECT_EQ(route(router), 1);
  // Without headroom the bound is the full 100000 us.
  CostAwareRouter::Options no_headroom = bound_ms(100);
  no_headroom.headroom = 0;
  CostAwareRouter full(cost, no_headroom);
  EXPECT_EQ(route(full), 0);
  b.worker(0).outstanding_work_us = 87901;  // 100001
  EXPECT_EQ(route(full), 1);
}

TEST(CostAwareRouterPricesTest, PicksTheCheapestThatMeetsTheBoundNotTheFastest) {
  FakeCostModel cost;
  ViewBuilder b;
  b.add_worker(priced("FAST", 100, 4))     // 3000 us
      .add_worker(priced("MID", 50, 0.8))  // 6000 us
      .add_worker(priced("FREE", 1, 0));   // 300000 us
  CostAwareRouter::Options o;
  o.latency_ms = 100;  // bound 90000 us: FREE misses it
  CostAwareRouter router(cost, o);
  EXPECT_EQ(router.route(make_request(1, 0, 100, 10), b.view()).worker, 1);
  o.latency_ms = 400;  // bound 360000 us: FREE meets it
  CostAwareRouter relaxed(cost, o);
  EXPECT_EQ(relaxed.route(make_request(1, 0, 100, 10), b.view()).worker, 2);
}

TEST(CostAwareRouterPricesTest, PriceCountsEveryGpuOfTheInstance) {
  FakeCostModel cost;
  ViewBuilder b;
  b.add_worker(priced("A", 100, 1), test_model(), /*tp=*/4).add_worker(priced("B", 100, 3));
  CostAwareRouter::Options o;
  o.latency_ms = 100;
  CostAwareRouter router(cost, o);
  EXPECT_DOUBLE_EQ(CostAwareRouter::price_per_hour(b.worker(0)), 4);
  EXPECT_EQ(router.route(make_request(1, 0, 100, 10), b.view()).worker, 1);
}

TEST_F(CostAwareRouterTest, NetworkLatencyCanPutACheapWorkerOutOfReach) {
  b.add_worker(priced("NEAR", 100, 8));  // worker 2: 3000 us, no network delay, dearest
  placed.set_nic_latency(b, 1, 43500);   // cloud: 87000 + 3000 = 90000, meets the bound
  b.worker(0).outstanding_work_us = 1000000;
  EXPECT_EQ(route(router), 1);
  placed.set_nic_latency(b, 1, 43501);   // 90002: only the near, dear worker meets it
  EXPECT_EQ(route(router), 2);
}

TEST_F(CostAwareRouterTest, EqualPricesGoToTheLowerPredictedLatency) {
  b.add_worker(priced("EDGE", 25, 0));   // worker 2: like worker 0 but 10 us away
  placed.set_nic_latency(b, 2, 10);      // 12020 us against worker 0's 12100
  EXPECT_EQ(route(router), 2);
  b.worker(2).outstanding_work_us = 81;  // 12101
  EXPECT_EQ(route(router), 0);
}

TEST_F(CostAwareRouterTest, WhenNoneMeetsTheBoundTheFastestTakesIt) {
  b.worker(0).outstanding_work_us = 1000000;  // 1012100
  b.worker(1).outstanding_work_us = 20000;    // 103000
  EXPECT_EQ(route(router), 1);
  b.worker(1).outstanding_work_us = 2000000;  // 2083000
  EXPECT_EQ(route(router), 0);
}

TEST_F(CostAwareRouterTest, WithoutABoundItIsLeastWorkPlusTheNetwork) {
  CostAwareRouter unbounded(cost, CostAwareRouter::Options{});
  EXPECT_EQ(unbounded.bound_us(), 0);
  EXPECT_EQ(route(unbounded), 0);            // 12100 against 83000
  b.worker(0).outstanding_work_us = 70999;  // 83099
  EXPECT_EQ(route(unbounded), 1);
  b.worker(0).outstanding_work_us = 70899;  // 82999
  EXPECT_EQ(route(unbounded), 0);
}

TEST_F(CostAwareRouterTest, AWorkerAtTheQueueCapIsSaturated) {
  CostAwareRouter::Options o = bound_ms(100);
  o.max_outstanding = 4;
  CostAwareRouter capped(cost, o);
  b.worker(0).waiting = 2;
  b.worker(0).running = 1;
  EXPECT_EQ(route(capped), 0);
  b.worker(0).waiting = 3;  // 4 outstanding: saturated, though its latency meets the bound
  EXPECT_EQ(route(capped), 1);
  // Every worker saturated: still routed, to the fastest (the edge, 12100 against 83000).
  b.worker(1).running = 4;
  EXPECT_EQ(route(capped), 0);
}

TEST_F(CostAwareRouterTest, WhenNoneMeetsTheBoundASaturatedWorkerIsTheLastResort) {
  CostAwareRouter::Options o = bound_ms(50);  // 45000 us: the cloud (83000) misses it
  o.max_outstanding = 4;
  CostAwareRouter capped(cost, o);
  b.worker(0).waiting = 4;  // saturated, and predicted faster than the cloud
  EXPECT_EQ(route(capped), 1);
}

TEST_F(CostAwareRouterTest, ExactTiesAreSpreadRoundRobin) {
  b.add_worker(priced("EDGE", 25, 0));
  placed.set_nic_latency(b, 2, 50);  // the same as worker 0
  EXPECT_EQ(route(router), 0);
  EXPECT_EQ(route(router), 2);
  EXPECT_EQ(route(router), 0);
}

TEST_F(CostAwareRouterTest, SkipsWorkersThatCannotTakeTheRequestAndRejectsWhenNoneCan) {
  b.worker(0).lifecycle = Lifecycle::kDraining;
  EXPECT_EQ(router.route(make_request(1, 0, 100, 10, "m"), b.view()).worker, 1);
  b.worker(1).health = Health::kDown;
  RouteDecision d = router.route(make_request(1, 0, 100, 10, "m"), b.view());
  EXPECT_TRUE(d.rejected());
  EXPECT_EQ(d.reason, "no healthy worker for model 'm'");
  d = router.route(make_request(1, 0, 100, 10, "other"), b.view());
  EXPECT_EQ(d.reason, "no worker serves model 'other'");
}

// The message of the Error that building `spec` throws.
std::string build_error(const json& spec, const PolicyContext& ctx) {
  try {
    router_registry().make(spec, ctx, "policies.router");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(CostAwareRouterRegistryTest, TheBoundDefaultsToTheWorkloadsLatencySlo) {
  FakeCostModel cost;
  SloSpec slo;
  slo.latency_ms = 100;
  PolicyContext ctx;
  ctx.cost = &cost;
  ctx.slo = &slo;
  auto from_slo = router_registry().make(json("cost_aware"), ctx, "policies.router");
  ASSERT_NE(dynamic_cast<CostAwareRouter*>(from_slo.get()), nullptr);
  EXPECT_EQ(dynamic_cast<CostAwareRouter&>(*from_slo).bound_us(), 90000);
  auto given = router_registry().make(json{{"name", "cost_aware"}, {"latency_ms", 200}, {"headroom", 0.5}}, ctx,
                                      "policies.router");
  EXPECT_EQ(dynamic_cast<CostAwareRouter&>(*given).bound_us(), 100000);
  ctx.slo = nullptr;
  auto no_slo = router_registry().make(json{{"name", "cost_aware"}, {"max_outstanding", 8}}, ctx, "policies.router");
  EXPECT_EQ(dynamic_cast<CostAwareRouter&>(*no_slo).bound_us(), 0);
}

TEST(CostAwareRouterRegistryTest, BadParametersNameTheirKey) {
  FakeCostModel cost;
  PolicyContext ctx;
  ctx.cost = &cost;
  const std::string where = "policies.router (cost_aware)";
  EXPECT_EQ(build_error(json{{"name", "cost_aware"}, {"headroom", 1}}, ctx), where + ".headroom: must be in [0, 1)");
  EXPECT_EQ(build_error(json{{"name", "cost_aware"}, {"latency_ms", -1}}, ctx),
            where + ".latency_ms: must be in [0, 1e12] (0: no bound)");
  EXPECT_EQ(build_error(json{{"name", "cost_aware"}, {"max_outstanding", -1}}, ctx),
            where + ".max_outstanding: must be >= 0 (0: no cap)");
  EXPECT_EQ(build_error(json{{"name", "cost_aware"}, {"slo_ms", 1}}, ctx),
            where + ": unknown key 'slo_ms'; valid keys: headroom, latency_ms, max_outstanding");
  EXPECT_EQ(build_error(json("cost_aware"), PolicyContext{}),
            where + ": cost_aware needs a cost model to predict work; none was given");
}

}  // namespace
}  // namespace twinfer
