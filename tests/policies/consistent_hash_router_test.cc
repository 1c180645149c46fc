#include "policies/routers/consistent_hash_router.h"

#include <map>

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::test_device;
using testing::test_model;
using testing::ViewBuilder;

Request with_session(RequestId id, const std::string& session) {
  Request r = make_request(id);
  r.session = session;
  return r;
}

ViewBuilder workers(int n) {
  ViewBuilder b;
  for (int i = 0; i < n; ++i) b.add_worker();
  return b;
}

// Worker of each of `n` sessions "s0".."s<n-1>".
std::vector<int> map_sessions(Router& router, const ClusterView& view, int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(router.route(with_session(i, "s" + std::to_string(i)), view).worker);
  return out;
}

TEST(ConsistentHashRouter, HashIsFnv1a64) {
  // Reference values of the FNV-1a 64-bit hash.
  EXPECT_EQ(fnv1a_64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a_64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a_64("foobar"), 0x85944171f73967e8ULL);
  EXPECT_NE(ring_hash("w0#1"), ring_hash("w0#2"));
}

TEST(ConsistentHashRouter, SameSessionSameWorker) {
  ViewBuilder b = workers(4);
  ConsistentHashRouter router(ConsistentHashRouter::Options{});
  std::vector<int> first = map_sessions(router, b.view(), 200);
  // Load does not matter without bounded loads, nor does the router instance.
  b.worker(first[0]).waiting = 50;
  ConsistentHashRouter fresh(ConsistentHashRouter::Options{});
  EXPECT_EQ(map_sessions(router, b.view(), 200), first);
  EXPECT_EQ(map_sessions(fresh, b.view(), 200), first);
  EXPECT_EQ(router.name(), "consistent_hash");
}

TEST(ConsistentHashRouter, SpreadsSessionsOverWorkers) {
  ViewBuilder b = workers(4);
  ConsistentHashRouter router(ConsistentHashRouter::Options{});
  std::vector<int> counts(4, 0);
  for (int w : map_sessions(router, b.view(), 4000)) ++counts.at(w);
  for (int c : counts) {
    EXPECT_GT(c, 600);
    EXPECT_LT(c, 1400);
  }
}

TEST(ConsistentHashRouter, AWorkerGoingDownMovesOnlyItsOwnKeys) {
  ViewBuilder b = workers(5);
  ConsistentHashRouter router(ConsistentHashRouter::Options{});
  std::vector<int> before = map_sessions(router, b.view(), 2000);
  b.worker(2).health = Health::kDown;
  std::vector<int> during = map_sessions(router, b.view(), 2000);
  int moved = 0;
  for (int i = 0; i < 2000; ++i) {
    if (before[i] == 2) {
      EXPECT_NE(during[i], 2);
      ++moved;
    } else {
      EXPECT_EQ(during[i], before[i]) << "key s" << i;
    }
  }
  EXPECT_GT(moved, 200);  // about a fifth
  b.worker(2).health = Health::kUp;
  EXPECT_EQ(map_sessions(router, b.view(), 2000), before);
}

TEST(ConsistentHashRouter, RequestsWithoutSessionHashTheirId) {
  ViewBuilder b = workers(4);
  ConsistentHashRouter router(ConsistentHashRouter::Options{});
  std::map<int, int> used;
  for (RequestId id = 0; id < 100; ++id) {
    int w = router.route(make_request(id), b.view()).worker;
    EXPECT_EQ(router.route(make_request(id), b.view()).worker, w);
    ++used[w];
  }
  EXPECT_EQ(used.size(), 4u);
  EXPECT_EQ(router.key_hash(make_request(42)), ring_hash("42"));
}

TEST(ConsistentHashRouter, ModelKeySendsAModelToOneWorker) {
  ViewBuilder b = workers(4);
  ConsistentHashRouter::Options o;
  o.key = ConsistentHashRouter::Key::kModel;
  ConsistentHashRouter router(o);
  int w = router.route(with_session(0, "a"), b.view()).worker;
  for (int i = 1; i < 50; ++i) EXPECT_EQ(router.route(with_session(i, "s" + std::to_string(i)), b.view()).worker, w);
}

TEST(ConsistentHashRouter, BoundedLoadSpillsToTheNextWorkerOnTheRing) {
  ViewBuilder b = workers(4);
  ConsistentHashRouter::Options o;
  o.key = ConsistentHashRouter::Key::kModel;
  ConsistentHashRouter unbounded(o);
  o.bounded_load = 1.25;
  ConsistentHashRouter bounded(o);
  const Request r = make_request(1);
  int home = unbounded.route(r, b.view()).worker;

  // Even loads of 2: the bound is 1.25 * 2 + 1 = 3.5, so home keeps the key.
  for (int i = 0; i < 4; ++i) b.worker(i).waiting = 2;
  EXPECT_EQ(bounded.route(r, b.view()).worker, home);
  // Home at 4 (mean 2.5, bound 4.125) still within; at 5 (mean 2.75, bound 4.4375) over.
  b.worker(home).waiting = 4;
  EXPECT_EQ(bounded.route(r, b.view()).worker, home);
  b.worker(home).waiting = 5;
  int spill = bounded.route(r, b.view()).worker;
  EXPECT_NE(spill, home);
  // The spill goes where the key goes when home is down: the next worker clockwise.
  b.worker(home).health = Health::kDown;
  EXPECT_EQ(unbounded.route(r, b.view()).worker, spill);
  // Unbounded ignores load.
  b.worker(home).health = Health::kUp;
  EXPECT_EQ(unbounded.route(r, b.view()).worker, home);
}

TEST(ConsistentHashRouter, SkipsOtherModelsAndRejectsWhenNoneFits) {
  ViewBuilder b;
  b.add_worker().add_worker(test_device(), test_model("other")).add_worker();
  ConsistentHashRouter router(ConsistentHashRouter::Options{});
  for (int i = 0; i < 100; ++i) {
    Request r = with_session(i, "s" + std::to_string(i));
    r.model = "m";
    EXPECT_NE(router.route(r, b.view()).worker, 1);
  }
  Request x = with_session(1, "s");
  x.model = "x";
  RouteDecision d = router.route(x, b.view());
  EXPECT_TRUE(d.rejected());
  EXPECT_EQ(d.reason, "no worker serves model 'x'");
}

TEST(ConsistentHashRouter, RebuildsTheRingForANewCluster) {
  ViewBuilder small = workers(2);
  ViewBuilder large = workers(6);
  ConsistentHashRouter router(ConsistentHashRouter::Options{}), fresh(ConsistentHashRouter::Options{});
  map_sessions(router, small.view(), 10);
  EXPECT_EQ(map_sessions(router, large.view(), 300), map_sessions(fresh, large.view(), 300));
  std::vector<int> counts(6, 0);
  for (int w : map_sessions(router, large.view(), 300)) ++counts.at(w);
  for (int c : counts) EXPECT_GT(c, 0);
}

}  // namespace
}  // namespace twinfer
