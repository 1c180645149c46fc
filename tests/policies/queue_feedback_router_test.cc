#include "policies/routers/queue_feedback_router.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::ViewBuilder;

QueueFeedbackRouter::Options seeded(std::uint64_t seed) {
  QueueFeedbackRouter::Options o;
  o.seed = seed;
  return o;
}

TEST(QueueFeedbackRouter, WeightShrinksWithTheQueueDownToTheFloor) {
  ViewBuilder b;
  b.add_worker();
  QueueFeedbackRouter router(seeded(1));
  EXPECT_EQ(router.weight(b.worker(0)), 100);
  b.worker(0).waiting = 30;
  b.worker(0).running = 8;
  EXPECT_EQ(router.weight(b.worker(0)), 62);
  b.worker(0).waiting = 150;
  EXPECT_EQ(router.weight(b.worker(0)), 1);

  QueueFeedbackRouter::Options o = seeded(1);
  o.max_weight = 10;
  o.min_weight = 2;
  QueueFeedbackRouter custom(o);
  b.worker(0).waiting = 7;
  b.worker(0).running = 0;
  EXPECT_EQ(custom.weight(b.worker(0)), 3);
  b.worker(0).waiting = 9;
  EXPECT_EQ(custom.weight(b.worker(0)), 2);
}

TEST(QueueFeedbackRouter, PicksInProportionToWeights) {
  // Outstanding 0, 50, 150: weights 100, 50, 1 of 151.
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  b.worker(1).waiting = 50;
  b.worker(2).waiting = 100;
  b.worker(2).running = 50;
  QueueFeedbackRouter router(seeded(3));
  const int n = 60000;
  std::vector<int> counts(3, 0);
  for (int i = 0; i < n; ++i) ++counts.at(router.route(make_request(i), b.view()).worker);
  EXPECT_NEAR(counts[0] / double(n), 100.0 / 151, 0.01);
  EXPECT_NEAR(counts[1] / double(n), 50.0 / 151, 0.01);
  EXPECT_NEAR(counts[2], n / 151.0, 100);  // about 397; never starved
  EXPECT_GT(counts[2], 0);
  EXPECT_EQ(router.name(), "queue_feedback");
}

TEST(QueueFeedbackRouter, SameSeedSamePicks) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  b.worker(1).waiting = 40;
  QueueFeedbackRouter x(seeded(8)), y(seeded(8));
  std::vector<int> px, py;
  for (int i = 0; i < 500; ++i) {
    px.push_back(x.route(make_request(i), b.view()).worker);
    py.push_back(y.route(make_request(i), b.view()).worker);
  }
  EXPECT_EQ(px, py);
}

TEST(QueueFeedbackRouter, OnlyEligibleWorkersAndRejectsWhenNone) {
  ViewBuilder b;
  b.add_worker().add_worker();
  b.worker(0).health = Health::kDown;
  b.worker(1).waiting = 99;
  QueueFeedbackRouter router(seeded(2));
  for (int i = 0; i < 200; ++i) EXPECT_EQ(router.route(make_request(i), b.view()).worker, 1);
  b.worker(1).health = Health::kDown;
  RouteDecision d = router.route(make_request(1), b.view());
  EXPECT_TRUE(d.rejected());
  EXPECT_EQ(d.reason, "no healthy worker");
}

}  // namespace
}  // namespace twinfer
