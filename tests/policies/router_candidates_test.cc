#include "policies/routers/router_candidates.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::test_device;
using testing::test_model;
using testing::ViewBuilder;

TEST(RouterCandidates, KeepsUpWorkersOfTheModelOnly) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker(test_device(), test_model("other")).add_worker().add_worker();
  b.worker(1).health = Health::kDown;
  b.worker(3).health = Health::kSuspect;
  std::vector<int> out{7, 7};  // stale content must go
  collect_candidates(make_request(1, 0, 100, 10, "m"), b.view(), out);
  EXPECT_EQ(out, (std::vector<int>{0, 4}));
  // An empty model name means the default model: every worker serves it.
  collect_candidates(make_request(2), b.view(), out);
  EXPECT_EQ(out, (std::vector<int>{0, 2, 4}));
}

TEST(RouterCandidates, UsesSuspectWorkersOnlyWhenNoHealthyOne) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  b.worker(0).health = Health::kSuspect;
  b.worker(1).health = Health::kDown;
  b.worker(2).health = Health::kSuspect;
  std::vector<int> out;
  collect_candidates(make_request(1), b.view(), out);
  EXPECT_EQ(out, (std::vector<int>{0, 2}));
}

TEST(RouterCandidates, ReasonsSayWhyNoWorkerFits) {
  ViewBuilder b;
  b.add_worker().add_worker();
  b.worker(0).health = Health::kDown;
  b.worker(1).health = Health::kDown;
  EXPECT_EQ(no_candidate_reason(make_request(1, 0, 1, 1, "x"), b.view()), "no worker serves model 'x'");
  EXPECT_EQ(no_candidate_reason(make_request(1, 0, 1, 1, "m"), b.view()), "no healthy worker for model 'm'");
  EXPECT_EQ(no_candidate_reason(make_request(1), b.view()), "no healthy worker");
  ViewBuilder empty;
  EXPECT_EQ(no_candidate_reason(make_request(1), empty.view()), "no worker in the cluster");
}

TEST(RouterCandidates, ArgminBreaksTiesFromTheStartIndex) {
  std::vector<int> candidates{1, 3, 5, 7};
  auto flat = [](int) { return 0; };
  EXPECT_EQ(argmin_from(candidates, 0, flat), 1);
  EXPECT_EQ(argmin_from(candidates, 4, flat), 5);
  EXPECT_EQ(argmin_from(candidates, 5, flat), 5);
  EXPECT_EQ(argmin_from(candidates, 8, flat), 1);  // wraps around
  // A strictly smaller score wins wherever it is.
  EXPECT_EQ(argmin_from(candidates, 4, [](int w) { return w == 3 ? -1 : 0; }), 3);
}

TEST(RouterCandidates, UniformIndexStaysInRangeAndIsSeeded) {
  std::mt19937_64 a(42), b(42);
  for (int i = 0; i < 1000; ++i) {
    std::size_t x = uniform_index(a, 3);
    EXPECT_LT(x, 3u);
    EXPECT_EQ(x, uniform_index(b, 3));
  }
  std::mt19937_64 c(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(uniform_index(c, 1), 0u);
  std::mt19937_64 d(5);
  double u = uniform_unit(d);
  EXPECT_GE(u, 0.0);
  EXPECT_LT(u, 1.0);
}

}  // namespace
}  // namespace twinfer
