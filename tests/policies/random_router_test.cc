#include "policies/routers/random_router.h"

#include <gtest/gtest.h>

#include "policies/registry.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::ViewBuilder;

std::vector<int> route_n(Router& router, const ClusterView& view, int n) {
  std::vector<int> picks;
  for (int i = 0; i < n; ++i) picks.push_back(router.route(make_request(i), view).worker);
  return picks;
}

ViewBuilder workers(int n) {
  ViewBuilder b;
  for (int i = 0; i < n; ++i) b.add_worker();
  return b;
}

TEST(RandomRouter, SameSeedSamePicks) {
  ViewBuilder b = workers(5);
  RandomRouter a({/*seed=*/11}), again({/*seed=*/11}), other({/*seed=*/12});
  std::vector<int> picks = route_n(a, b.view(), 1000);
  EXPECT_EQ(picks, route_n(again, b.view(), 1000));
  EXPECT_NE(picks, route_n(other, b.view(), 1000));
}

TEST(RandomRouter, PicksAreRoughlyUniform) {
  ViewBuilder b = workers(4);
  RandomRouter router({/*seed=*/1});
  const int n = 60000;
  std::vector<int> counts(4, 0);
  for (int w : route_n(router, b.view(), n)) ++counts.at(w);
  double expected = n / 4.0, chi2 = 0;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  // 16.27 is the 0.999 quantile of chi-square with 3 degrees of freedom.
  EXPECT_LT(chi2, 16.27) << counts[0] << " " << counts[1] << " " << counts[2] << " " << counts[3];
}

TEST(RandomRouter, NeverPicksAnIneligibleWorker) {
  ViewBuilder b = workers(3);
  b.worker(1).health = Health::kDown;
  RandomRouter router({/*seed=*/3});
  std::vector<int> counts(3, 0);
  for (int w : route_n(router, b.view(), 3000)) ++counts.at(w);
  EXPECT_EQ(counts[1], 0);
  EXPECT_GT(counts[0], 1300);
  EXPECT_GT(counts[2], 1300);
}

TEST(RandomRouter, RejectsWhenNoWorkerFits) {
  ViewBuilder b = workers(2);
  RandomRouter router({/*seed=*/3});
  RouteDecision d = router.route(make_request(1, 0, 1, 1, "x"), b.view());
  EXPECT_TRUE(d.rejected());
  EXPECT_EQ(d.reason, "no worker serves model 'x'");
}

TEST(RandomRouter, SeedComesFromTheContextUnlessGiven) {
  ViewBuilder b = workers(5);
  PolicyContext ctx;
  ctx.seed = 7;
  auto from_ctx = router_registry().make(nlohmann::json{{"name", "random"}}, ctx, "router");
  auto from_param = router_registry().make(nlohmann::json{{"name", "random"}, {"seed", 9}}, ctx, "router");
  RandomRouter seven({7}), nine({9});
  EXPECT_EQ(route_n(*from_ctx, b.view(), 200), route_n(seven, b.view(), 200));
  EXPECT_EQ(route_n(*from_param, b.view(), 200), route_n(nine, b.view(), 200));
}

}  // namespace
}  // namespace twinfer
