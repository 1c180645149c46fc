#include "policies/routers/least_outstanding_router.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::test_device;
using testing::test_model;
using testing::ViewBuilder;

int route(Router& router, const ClusterView& view, const std::string& model = "") {
  return router.route(make_request(1, 0, 100, 10, model), view).worker;
}

TEST(LeastOutstandingRouter, PicksFewestWaitingPlusRunning) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  b.worker(0).running = 4;   // 4
  b.worker(1).waiting = 3;   // 3
  b.worker(2).waiting = 2;
  b.worker(2).running = 3;   // 5
  LeastOutstandingRouter router;
  EXPECT_EQ(route(router, b.view()), 1);
  EXPECT_EQ(route(router, b.view()), 1);  // the view did not change
  b.worker(1).waiting = 5;
  EXPECT_EQ(route(router, b.view()), 0);
  EXPECT_EQ(router.name(), "least_outstanding");
}

TEST(LeastOutstandingRouter, TiesGoRoundRobin) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  LeastOutstandingRouter router;
  EXPECT_EQ(route(router, b.view()), 0);
  EXPECT_EQ(route(router, b.view()), 1);
  EXPECT_EQ(route(router, b.view()), 2);
  EXPECT_EQ(route(router, b.view()), 0);
  // Ties among a subset: workers 1 and 2 tie at 0; the rotation continues after the last pick (0).
  b.worker(0).waiting = 1;
  EXPECT_EQ(route(router, b.view()), 1);
  EXPECT_EQ(route(router, b.view()), 2);
  EXPECT_EQ(route(router, b.view()), 1);
}

TEST(LeastOutstandingRouter, IgnoresIneligibleWorkersEvenWhenIdle) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker(test_device(), test_model("other"));
  b.worker(0).health = Health::kDown;
  b.worker(1).waiting = 9;
  LeastOutstandingRouter router;
  EXPECT_EQ(route(router, b.view(), "m"), 1);
  // A suspect idle worker loses to a busy healthy one.
  b.worker(0).health = Health::kSuspect;
  EXPECT_EQ(route(router, b.view(), "m"), 1);
}

TEST(LeastOutstandingRouter, RejectsWhenNoWorkerFits) {
  ViewBuilder b;
  b.add_worker();
  b.worker(0).health = Health::kDown;
  LeastOutstandingRouter router;
  RouteDecision d = router.route(make_request(1), b.view());
  EXPECT_TRUE(d.rejected());
  EXPECT_EQ(d.reason, "no healthy worker");
}

}  // namespace
}  // namespace twinfer
