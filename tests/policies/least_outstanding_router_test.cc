#include "policies/routers/least_outstanding_router.h"

#include <random>

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


// The index (a view that says which workers changed) against the scan (a view that does not), over
// random changes: loads, health (up, suspect, down), lifecycle, three requested models of which two
// are versions of one family, rejections and the suspect-only fallback. Every pick must agree.
TEST(LeastOutstandingRouter, TheIndexPicksWhatTheScanPicksThroughRandomChanges) {
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
    LeastOutstandingRouter with_index, with_scan;
    std::mt19937_64 rng(static_cast<std::uint64_t>(n));
    const std::string models[] = {"", "a", "a-v2", "b", "missing"};
    int indexed_decisions = 0;
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
      const RouteDecision got = with_index.route(r, indexed);
      const RouteDecision want = with_scan.route(r, scanned);
      ASSERT_EQ(got.worker, want.worker) << "step " << step << ", model '" << r.model << "'";
      ASSERT_EQ(got.reason, want.reason) << "step " << step;
      if (got.worker >= 0) {
        ++b.worker(got.worker).waiting;  // the request joins its queue
        changes.touch(std::size_t(got.worker));
        indexed_decisions += b.worker(got.worker).health == Health::kUp;
      }
    }
    EXPECT_GT(indexed_decisions, 100);  // most picks came from the index, not the fallback
  }
}

}  // namespace
}  // namespace twinfer
