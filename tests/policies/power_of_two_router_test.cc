#include "policies/routers/power_of_two_router.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::ViewBuilder;

std::vector<int> counts_of(Router& router, const ClusterView& view, int n) {
  std::vector<int> counts(view.size(), 0);
  for (int i = 0; i < n; ++i) ++counts.at(router.route(make_request(i), view).worker);
  return counts;
}

PowerOfTwoRouter::Options with(int choices, std::uint64_t seed) {
  PowerOfTwoRouter::Options o;
  o.choices = choices;
  o.seed = seed;
  return o;
}

TEST(PowerOfTwoRouter, NeverPicksTheWorseOfTwo) {
  ViewBuilder b;
  b.add_worker().add_worker();
  b.worker(0).waiting = 3;
  b.worker(1).running = 1;
  PowerOfTwoRouter router(with(2, 5));
  EXPECT_EQ(counts_of(router, b.view(), 1000), (std::vector<int>{0, 1000}));
  EXPECT_EQ(router.name(), "power_of_two");
}

TEST(PowerOfTwoRouter, WithThreeWorkersTheMiddleOneWinsOnlyAgainstTheWorst) {
  // Loads 5, 1, 9. The pairs {0,1}, {0,2}, {1,2} are equally likely and are won by 1, 0, 1:
  // worker 0 gets 1/3 of the requests, worker 1 2/3, worker 2 (the worst of any pair) none.
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  b.worker(0).waiting = 5;
  b.worker(1).waiting = 1;
  b.worker(2).waiting = 9;
  PowerOfTwoRouter router(with(2, 17));
  const int n = 30000;
  std::vector<int> counts = counts_of(router, b.view(), n);
  EXPECT_EQ(counts[2], 0);
  EXPECT_NEAR(counts[0] / double(n), 1.0 / 3, 0.02);
  EXPECT_NEAR(counts[1] / double(n), 2.0 / 3, 0.02);
}

TEST(PowerOfTwoRouter, WithAllWorkersSampledPicksTheLeastLoaded) {
  ViewBuilder b;
  for (int i = 0; i < 4; ++i) b.add_worker();
  b.worker(0).waiting = 2;
  b.worker(1).waiting = 8;  // the most loaded
  b.worker(2).waiting = 1;  // the least
  b.worker(3).waiting = 4;
  PowerOfTwoRouter router(with(4, 1));
  EXPECT_EQ(counts_of(router, b.view(), 2000), (std::vector<int>{0, 0, 2000, 0}));
  PowerOfTwoRouter more_choices_than_workers(with(10, 1));
  EXPECT_EQ(counts_of(more_choices_than_workers, b.view(), 100), (std::vector<int>{0, 0, 100, 0}));
}

TEST(PowerOfTwoRouter, OneChoiceIsPlainRandom) {
  ViewBuilder b;
  b.add_worker().add_worker();
  b.worker(0).waiting = 100;
  PowerOfTwoRouter router(with(1, 2));
  std::vector<int> counts = counts_of(router, b.view(), 4000);
  EXPECT_NEAR(counts[0] / 4000.0, 0.5, 0.05);
}

TEST(PowerOfTwoRouter, SamplesOnlyEligibleWorkersAndIsSeeded) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  b.worker(0).health = Health::kDown;  // idle but down
  b.worker(1).waiting = 2;
  b.worker(2).waiting = 3;
  PowerOfTwoRouter router(with(2, 9));
  EXPECT_EQ(counts_of(router, b.view(), 500), (std::vector<int>{0, 500, 0}));

  b.worker(0).health = Health::kUp;
  b.worker(0).waiting = 2;
  PowerOfTwoRouter x(with(2, 4)), y(with(2, 4));
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(x.route(make_request(i), b.view()).worker, y.route(make_request(i), b.view()).worker);
  }
}

TEST(PowerOfTwoRouter, RejectsWhenNoWorkerFits) {
  ViewBuilder b;
  b.add_worker();
  PowerOfTwoRouter router(with(2, 1));
  RouteDecision d = router.route(make_request(1, 0, 1, 1, "x"), b.view());
  EXPECT_TRUE(d.rejected());
  EXPECT_EQ(d.reason, "no worker serves model 'x'");
}

}  // namespace
}  // namespace twinfer
