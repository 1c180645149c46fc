#include "policies/routers/model_index.h"

#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "policies/registry.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::test_device;
using testing::test_model;
using testing::ViewBuilder;

TEST(MinTree, FindsTheFirstKeyAtMostABoundFromAnyPosition) {
  std::mt19937_64 rng(3);
  for (std::size_t n : {std::size_t{1}, std::size_t{5}, std::size_t{64}, std::size_t{100}}) {
    MinTree tree;
    tree.reset(n);
    std::vector<std::int64_t> keys(n, MinTree::kNone);
    for (int step = 0; step < 2000; ++step) {
      const std::size_t i = rng() % n;
      keys[i] = rng() % 4 == 0 ? MinTree::kNone : std::int64_t(rng() % 6);
      tree.set(i, keys[i]);
      std::int64_t least = MinTree::kNone;
      for (std::int64_t k : keys) least = std::min(least, k);
      ASSERT_EQ(tree.min(), least);
      const std::size_t from = rng() % (n + 1);
      const std::int64_t bound = std::int64_t(rng() % 7);
      std::int64_t want = -1;
      for (std::size_t p = from; p < n && want < 0; ++p) {
        if (keys[p] <= bound) want = std::int64_t(p);
      }
      ASSERT_EQ(tree.first_at_or_after(from, bound), want) << "n " << n << " from " << from << " bound " << bound;
    }
  }
}

// The routers that keep an index (a view that says which workers changed), each against itself
// scanning (a view that does not), over random changes: loads, health (up, suspect, down),
// lifecycle, requested models (two of them versions of one family, one served by nobody),
// rejections and the suspect-only fallback. Every decision must agree, and the index must be used.
class IndexAgainstScan : public ::testing::TestWithParam<const char*> {};

TEST_P(IndexAgainstScan, EveryDecisionAgreesThroughRandomChanges) {
  const nlohmann::json spec = nlohmann::json::parse(GetParam());
  testing::FakeCostModel cost;
  PolicyContext ctx;
  ctx.cost = &cost;
  ctx.seed = 11;
  for (int n : {1, 2, 7, 64, 300}) {
    SCOPED_TRACE("workers: " + std::to_string(n));
    ViewBuilder b;
    ModelSpec a = test_model("a"), a2 = test_model("a-v2"), other = test_model("b");
    a2.version_of = "a";
    for (int i = 0; i < n; ++i) b.add_worker(test_device(), i % 3 == 0 ? a : i % 3 == 1 ? a2 : other);
    ViewChanges changes(b.size());
    ClusterView indexed = b.view(0);
    indexed.changes = &changes;
    const ClusterView scanned = b.view(0);
    auto with_index = router_registry().make(spec, ctx, "policies.router");
    auto with_scan = router_registry().make(spec, ctx, "policies.router");
    std::mt19937_64 rng(static_cast<std::uint64_t>(n));
    const std::string models[] = {"", "a", "a-v2", "b", "missing"};
    int first_choice_picks = 0;
    for (int step = 0; step < 4000; ++step) {
      // A few changes, as a driver makes them between decisions.
      for (int k = static_cast<int>(rng() % 4); k > 0; --k) {
        const int w = static_cast<int>(rng() % std::uint64_t(n));
        WorkerView& v = b.worker(w);
        switch (rng() % 10) {
          case 0: v.health = Health(rng() % 3); break;
          case 1: v.lifecycle = Lifecycle(rng() % 4); break;
          case 2: v.running = static_cast<int>(rng() % 5); break;
          default: v.waiting = std::max(0, v.waiting + static_cast<int>(rng() % 3) - 1); break;
        }
        changes.touch(std::size_t(w));
      }
      const Request r = make_request(RequestId(step), 0, 100, 10, models[rng() % 5]);
      const RouteDecision got = with_index->route(r, indexed);
      const RouteDecision want = with_scan->route(r, scanned);
      ASSERT_EQ(got.worker, want.worker) << "step " << step << ", model '" << r.model << "'";
      ASSERT_EQ(got.reason, want.reason) << "step " << step;
      if (got.worker >= 0) {
        first_choice_picks += b.worker(got.worker).health == Health::kUp;
        ++b.worker(got.worker).waiting;  // the request joins its queue
        changes.touch(std::size_t(got.worker));
      }
    }
    EXPECT_GT(first_choice_picks, 100);  // most picks were first choices, which the index makes
  }
}

INSTANTIATE_TEST_SUITE_P(Routers, IndexAgainstScan,
                         ::testing::Values(R"({"name": "least_outstanding"})", R"({"name": "random"})",
                                           R"({"name": "power_of_two"})", R"({"name": "power_of_two", "choices": 3})",
                                           R"({"name": "power_of_two", "choices": 40})"));

TEST(CandidateSet, CountsAndFindsTheKthFirstChoiceWorker) {
  ViewBuilder b;
  for (int i = 0; i < 37; ++i) b.add_worker();
  const ClusterView view = b.view(0);
  CandidateSet set;
  set.reset(b.size());
  for (std::size_t w = 0; w < b.size(); ++w) set.update(w, view, "");
  EXPECT_EQ(set.count(), b.size());
  std::mt19937_64 rng(5);
  for (int step = 0; step < 3000; ++step) {
    const std::size_t w = rng() % b.size();
    b.worker(int(w)).health = Health(rng() % 3);
    set.update(w, view, "");
    std::vector<int> want;
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (b.worker(int(i)).health == Health::kUp) want.push_back(int(i));
    }
    ASSERT_EQ(set.count(), want.size());
    for (std::size_t k = 0; k < want.size(); ++k) ASSERT_EQ(set.kth(k), want[k]) << k;
  }
}

}  // namespace
}  // namespace twinfer
