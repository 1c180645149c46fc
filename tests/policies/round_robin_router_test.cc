#include "policies/routers/round_robin_router.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::test_device;
using testing::test_model;
using testing::ViewBuilder;

std::vector<int> route_n(Router& router, const ClusterView& view, int n, const std::string& model = "") {
  std::vector<int> picks;
  for (int i = 0; i < n; ++i) picks.push_back(router.route(make_request(i, 0, 100, 10, model), view).worker);
  return picks;
}

TEST(RoundRobinRouter, CyclesOverWorkersInIndexOrder) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  RoundRobinRouter router;
  EXPECT_EQ(route_n(router, b.view(), 7), (std::vector<int>{0, 1, 2, 0, 1, 2, 0}));
  EXPECT_EQ(router.name(), "round_robin");
}

TEST(RoundRobinRouter, SkipsDownWorkersAndOtherModels) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker(test_device(), test_model("other")).add_worker();
  b.worker(1).health = Health::kDown;
  RoundRobinRouter router;
  EXPECT_EQ(route_n(router, b.view(), 4, "m"), (std::vector<int>{0, 3, 0, 3}));
  EXPECT_EQ(route_n(router, b.view(), 2, "other"), (std::vector<int>{2, 2}));
}

TEST(RoundRobinRouter, AWorkerComingBackRejoinsTheCycleInPlace) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  b.worker(1).health = Health::kDown;
  RoundRobinRouter router;
  EXPECT_EQ(route_n(router, b.view(), 1), (std::vector<int>{0}));
  b.worker(1).health = Health::kUp;
  EXPECT_EQ(route_n(router, b.view(), 4), (std::vector<int>{1, 2, 0, 1}));
}

TEST(RoundRobinRouter, UsesSuspectWorkersOnlyWhenNoHealthyOne) {
  ViewBuilder b;
  b.add_worker().add_worker();
  b.worker(0).health = Health::kSuspect;
  RoundRobinRouter router;
  EXPECT_EQ(route_n(router, b.view(), 3), (std::vector<int>{1, 1, 1}));
  b.worker(1).health = Health::kDown;
  EXPECT_EQ(route_n(router, b.view(), 2), (std::vector<int>{0, 0}));
}

TEST(RoundRobinRouter, RejectsWithAReasonWhenNoWorkerFits) {
  ViewBuilder b;
  b.add_worker().add_worker();
  RoundRobinRouter router;
  RouteDecision d = router.route(make_request(1, 0, 100, 10, "x"), b.view());
  EXPECT_TRUE(d.rejected());
  EXPECT_EQ(d.reason, "no worker serves model 'x'");
  b.worker(0).health = Health::kDown;
  b.worker(1).health = Health::kDown;
  d = router.route(make_request(2, 0, 100, 10, "m"), b.view());
  EXPECT_TRUE(d.rejected());
  EXPECT_EQ(d.reason, "no healthy worker for model 'm'");
}

}  // namespace
}  // namespace twinfer
