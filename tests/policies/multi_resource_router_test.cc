#include "policies/routers/multi_resource_router.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::ViewBuilder;

TEST(MultiResourceRouter, ScoreIsTheWeightedSum) {
  ViewBuilder b;
  b.add_worker();
  WorkerView& w = b.worker(0);
  w.utilization_ewma = 0.5;
  w.kv_blocks_total = 100;
  w.kv_blocks_free = 25;  // 0.75 used
  w.waiting = 5;
  w.running = 3;          // 8 outstanding
  MultiResourceRouter defaults(MultiResourceRouter::Options{});
  EXPECT_DOUBLE_EQ(defaults.score(w), 0.5 + 0.75 + 8.0 / 16);
  MultiResourceRouter::Options o;
  o.w_util = 2;
  o.w_kv = 0.5;
  o.w_queue = 1;
  o.queue_norm = 4;
  MultiResourceRouter custom(o);
  EXPECT_DOUBLE_EQ(custom.score(w), 1.0 + 0.375 + 2.0);
  // A worker without a tracked KV cache counts as 0 used.
  w.kv_blocks_total = 0;
  w.kv_blocks_free = 0;
  EXPECT_DOUBLE_EQ(defaults.score(w), 0.5 + 0.5);
}

TEST(MultiResourceRouter, PicksTheLowestScore) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  b.worker(0).utilization_ewma = 0.9;  // 0.9
  b.worker(1).kv_blocks_total = 10;
  b.worker(1).kv_blocks_free = 5;
  b.worker(1).waiting = 4;             // 0.5 + 0.25 = 0.75
  b.worker(2).waiting = 16;            // 1.0
  MultiResourceRouter router(MultiResourceRouter::Options{});
  EXPECT_EQ(router.route(make_request(1), b.view()).worker, 1);
  EXPECT_EQ(router.name(), "multi_resource");
  // Ignoring queues: 0.9, 0.5, 0.0.
  MultiResourceRouter::Options no_queue;
  no_queue.w_queue = 0;
  MultiResourceRouter kv_and_util(no_queue);
  EXPECT_EQ(kv_and_util.route(make_request(1), b.view()).worker, 2);
  // Ignoring everything but utilization: 0.9, 0, 0 tie, broken round-robin.
  MultiResourceRouter::Options util_only;
  util_only.w_kv = 0;
  util_only.w_queue = 0;
  MultiResourceRouter by_util(util_only);
  EXPECT_EQ(by_util.route(make_request(1), b.view()).worker, 1);
  EXPECT_EQ(by_util.route(make_request(2), b.view()).worker, 2);
  EXPECT_EQ(by_util.route(make_request(3), b.view()).worker, 1);
}

TEST(MultiResourceRouter, SkipsIneligibleAndRejectsWhenNone) {
  ViewBuilder b;
  b.add_worker().add_worker();
  b.worker(0).health = Health::kDown;
  b.worker(1).utilization_ewma = 1.0;
  MultiResourceRouter router(MultiResourceRouter::Options{});
  EXPECT_EQ(router.route(make_request(1), b.view()).worker, 1);
  RouteDecision d = router.route(make_request(2, 0, 1, 1, "x"), b.view());
  EXPECT_TRUE(d.rejected());
  EXPECT_EQ(d.reason, "no worker serves model 'x'");
}

}  // namespace
}  // namespace twinfer
