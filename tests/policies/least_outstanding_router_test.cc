#include "policies/routers/least_outstanding_router.h"

#include <gtest/gtest.h>

#include "core/error.h"
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

TEST(LeastOutstandingRouter, SlowStartRampsANewcomersShareOverTheWindow) {
  constexpr TimeUs kS = 1'000'000;
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  b.worker(0).running = 9;  // ready from the start
  b.worker(1).running = 9;
  b.worker(2).ready_since_us = 100 * kS;  // a cold start made it ready at 100 s, empty
  LeastOutstandingRouter plain;
  EXPECT_EQ(route(plain, b.view(101 * kS)), 2);
  LeastOutstandingRouter::Options o;
  o.slow_start_s = 30;
  LeastOutstandingRouter slow(o);
  // The others score 9 + 1 = 10. 1 s in, f = 0.1 (the floor): one request already makes the
  // newcomer score (1 + 1) / 0.1 = 20.
  b.worker(2).running = 1;
  EXPECT_NE(route(slow, b.view(101 * kS)), 2);
  // 15 s in: f = 0.5, (1 + 1) / 0.5 = 4 < 10.
  EXPECT_EQ(route(slow, b.view(115 * kS)), 2);
  b.worker(2).running = 5;  // (5 + 1) / 0.5 = 12 > 10
  EXPECT_NE(route(slow, b.view(115 * kS)), 2);
  // After the window it is scored like any other: 6 < 10.
  EXPECT_EQ(route(slow, b.view(130 * kS)), 2);
  // Workers ready from the start are never in slow start.
  b.worker(2).ready_since_us = -1;
  EXPECT_EQ(route(slow, b.view(101 * kS)), 2);
}

TEST(LeastOutstandingRouter, ReadsSlowStartAndRejectsANegativeWindow) {
  nlohmann::json ok = {{"slow_start_s", 30}};
  JsonParams p(ok, "policies.router (least_outstanding)");
  EXPECT_DOUBLE_EQ(LeastOutstandingRouter::read_options(p).slow_start_s, 30);
  nlohmann::json bad = {{"slow_start_s", -1}};
  JsonParams q(bad, "policies.router (least_outstanding)");
  try {
    LeastOutstandingRouter::read_options(q);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "policies.router (least_outstanding).slow_start_s: must be >= 0 seconds (0: off), got -1");
  }
}


}  // namespace
}  // namespace twinfer
