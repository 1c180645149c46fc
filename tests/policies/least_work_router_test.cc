#include "policies/routers/least_work_router.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::FakeCostModel;
using testing::make_request;
using testing::test_device;
using testing::test_model;
using testing::ViewBuilder;

// FakeCostModel: a request of 100 input and 10 output tokens costs 1000 + 10*100 + 100*10 = 3000 us
// on a 100-TFLOPS device and 4x that, 12000 us, on a 25-TFLOPS one.
class LeastWorkRouterTest : public ::testing::Test {
 protected:
  LeastWorkRouterTest() {
    b.add_worker(test_device("FAST", 100)).add_worker(test_device("SLOW", 25));
  }
  int route() { return router.route(make_request(1, 0, 100, 10), b.view()).worker; }

  FakeCostModel cost;
  ViewBuilder b;
  LeastWorkRouter router{cost};
};

TEST_F(LeastWorkRouterTest, PredictsQueuedWorkPlusTheRequestOnThatDevice) {
  b.worker(0).outstanding_work_us = 500;
  b.worker(1).outstanding_work_us = 700;
  EXPECT_EQ(router.predicted_delay_us(make_request(1, 0, 100, 10), b.worker(0)), 3500);
  EXPECT_EQ(router.predicted_delay_us(make_request(1, 0, 100, 10), b.worker(1)), 12700);
  EXPECT_EQ(router.name(), "least_work");
}

TEST_F(LeastWorkRouterTest, PrefersTheFastDeviceEvenWithMoreQueuedWork) {
  b.worker(0).outstanding_work_us = 8000;  // 8000 + 3000 = 11000
  b.worker(0).waiting = 6;
  b.worker(1).outstanding_work_us = 0;     // 0 + 12000
  EXPECT_EQ(route(), 0);
}

TEST_F(LeastWorkRouterTest, PicksTheSlowDeviceOnceTheFastIsLoadedEnough) {
  b.worker(0).outstanding_work_us = 9500;  // 12500
  b.worker(1).outstanding_work_us = 0;     // 12000
  EXPECT_EQ(route(), 1);
  b.worker(1).outstanding_work_us = 501;   // 12501
  EXPECT_EQ(route(), 0);
}

TEST_F(LeastWorkRouterTest, LongerRequestsWidenTheGap) {
  // 1000 input, 100 output: 1000 + 10000 + 10000 = 21000 us fast, 84000 us slow.
  b.worker(0).outstanding_work_us = 60000;  // 81000
  b.worker(1).outstanding_work_us = 0;      // 84000
  EXPECT_EQ(router.route(make_request(1, 0, 1000, 100), b.view()).worker, 0);
  // The short request (3000 / 12000) at the same loads goes to the idle slow device.
  EXPECT_EQ(route(), 1);
}

TEST_F(LeastWorkRouterTest, SkipsDownWorkersAndRejectsWhenNoneFits) {
  b.worker(0).health = Health::kDown;
  b.worker(1).outstanding_work_us = 1000000;
  EXPECT_EQ(route(), 1);
  b.worker(1).health = Health::kDown;
  RouteDecision d = router.route(make_request(1, 0, 100, 10, "m"), b.view());
  EXPECT_TRUE(d.rejected());
  EXPECT_EQ(d.reason, "no healthy worker for model 'm'");
}

}  // namespace
}  // namespace twinfer
