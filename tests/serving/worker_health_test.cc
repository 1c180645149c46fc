#include "serving/health/worker_health.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

// 100 ms beats (suspect after 2 misses, down after 5); the breaker opens after 2 failures in a row,
// stays open 1 s and probes with 3 calls.
HealthOptions options() {
  HealthOptions o;
  o.heartbeat = HeartbeatOptions{100'000, 2, 5};
  o.breaker.consecutive_failures = 2;
  o.breaker.open_us = 1'000'000;
  o.breaker.half_open_probes = 3;
  return o;
}

void expect_change(const HealthChange& c, TimeUs at_us, int worker, Health from, Health to, const std::string& why) {
  EXPECT_EQ(c.at_us, at_us);
  EXPECT_EQ(c.worker, worker);
  EXPECT_EQ(c.from, from);
  EXPECT_EQ(c.to, to);
  EXPECT_EQ(c.why, why);
}

TEST(WorkerHealth, HealthIsTheWorseOfHeartbeatAndBreaker) {
  WorkerHealth h(2, options(), 0);
  h.call_failed(0, 10, "timeout", /*hard=*/false);
  EXPECT_EQ(h.health(0, 10), Health::kUp);  // one soft failure: breaker still closed
  h.call_failed(0, 20, "timeout", false);
  EXPECT_EQ(h.health(0, 20), Health::kDown);
  EXPECT_FALSE(h.allow_call(0, 20));
  EXPECT_EQ(h.health(1, 20), Health::kUp);
  // Worker 1's heartbeat is late (suspect) while its breaker is closed.
  EXPECT_EQ(h.health(1, 250'000), Health::kSuspect);
}

TEST(WorkerHealth, HalfOpenIsUpWithProbeRoomAndDownWithoutIt) {
  WorkerHealth h(1, options(), 0);
  h.call_failed(0, 0, "e", false);
  h.call_failed(0, 0, "e", false);
  EXPECT_EQ(h.health(0, 0), Health::kDown);  // open
  const TimeUs t = 1'000'000;
  h.beat(0, t);
  EXPECT_EQ(h.health(0, t), Health::kUp);  // half-open: routers send it real requests as probes
  for (int i = 0; i < 3; ++i) h.call_sent(0, t);
  EXPECT_EQ(h.health(0, t), Health::kDown);
  h.call_succeeded(0, 1000, t);
  EXPECT_EQ(h.health(0, t), Health::kUp);
}

TEST(WorkerHealth, RefreshLogsHeartbeatTransitions) {
  WorkerHealth h(2, options(), 0);
  h.refresh(0);
  EXPECT_TRUE(h.changes().empty());
  h.beat(1, 150'000);
  h.refresh(200'000);
  ASSERT_EQ(h.changes().size(), 1u);
  expect_change(h.changes()[0], 200'000, 0, Health::kUp, Health::kSuspect, "missed 2 heartbeats");
  h.refresh(500'000);
  ASSERT_EQ(h.changes().size(), 3u);
  expect_change(h.changes()[1], 500'000, 0, Health::kSuspect, Health::kDown, "missed 5 heartbeats");
  expect_change(h.changes()[2], 500'000, 1, Health::kUp, Health::kSuspect, "missed 3 heartbeats");
  h.beat(0, 600'000);
  h.refresh(600'000);
  ASSERT_EQ(h.changes().size(), 4u);
  expect_change(h.changes()[3], 600'000, 0, Health::kDown, Health::kUp, "heartbeat");
  h.refresh(600'000);  // nothing new
  EXPECT_EQ(h.changes().size(), 4u);
}

TEST(WorkerHealth, HardFailureMarksDownUntilTheNextBeat) {
  HealthOptions o = options();
  o.breaker.consecutive_failures = 5;
  WorkerHealth h(1, o, 0);
  h.call_failed(0, 10, "timeout", /*hard=*/false);
  h.refresh(10);
  EXPECT_TRUE(h.changes().empty());
  h.call_failed(0, 20, "connection refused", /*hard=*/true);
  h.refresh(20);
  ASSERT_EQ(h.changes().size(), 1u);
  expect_change(h.changes()[0], 20, 0, Health::kUp, Health::kDown, "call failed: connection refused");
  EXPECT_EQ(h.next_change_us(20), kNever);
  h.beat(0, 30);
  h.refresh(30);
  ASSERT_EQ(h.changes().size(), 2u);
  expect_change(h.changes()[1], 30, 0, Health::kDown, Health::kUp, "heartbeat");
}

TEST(WorkerHealth, BreakerTransitionsAreLoggedWithTheirReasons) {
  WorkerHealth h(1, options(), 0);
  h.call_failed(0, 10, "timeout", false);
  h.call_failed(0, 10, "timeout", false);
  h.refresh(10);
  ASSERT_EQ(h.changes().size(), 1u);
  expect_change(h.changes()[0], 10, 0, Health::kUp, Health::kDown, "breaker open: 2 consecutive failures");

  // Beats keep the heartbeat up; the next change is the end of the open time.
  h.beat(0, 900'000);
  EXPECT_EQ(h.next_change_us(900'000), 1'000'010);
  const TimeUs t = 1'000'010;
  h.beat(0, t);
  h.refresh(t);
  ASSERT_EQ(h.changes().size(), 2u);
  expect_change(h.changes()[1], t, 0, Health::kDown, Health::kUp, "breaker half-open");

  for (int i = 0; i < 3; ++i) h.call_sent(0, t);
  h.refresh(t);
  ASSERT_EQ(h.changes().size(), 3u);
  expect_change(h.changes()[2], t, 0, Health::kUp, Health::kDown, "breaker half-open: 3 probes in flight");

  for (int i = 0; i < 3; ++i) h.call_succeeded(0, 1000, t);
  h.refresh(t);
  ASSERT_EQ(h.changes().size(), 4u);
  expect_change(h.changes()[3], t, 0, Health::kDown, Health::kUp, "breaker closed: 3 probes succeeded");
}

TEST(WorkerHealth, TwoCausesAtOnceAreBothNamed) {
  WorkerHealth h(1, options(), 0);
  h.call_failed(0, 10, "timeout", false);
  h.call_failed(0, 10, "connection reset", /*hard=*/true);
  h.refresh(10);
  ASSERT_EQ(h.changes().size(), 1u);
  expect_change(h.changes()[0], 10, 0, Health::kUp, Health::kDown,
                "call failed: connection reset; breaker open: 2 consecutive failures");
}

TEST(WorkerHealth, NextChangeIsTheEarliestOverWorkers) {
  WorkerHealth h(3, options(), 0);
  h.beat(0, 50'000);
  h.beat(1, 80'000);
  h.beat(2, 90'000);
  EXPECT_EQ(h.next_change_us(100'000), 250'000);  // worker 0 suspect at 50 ms + 2 x 100 ms
  h.call_failed(2, 100'000, "e", false);
  h.call_failed(2, 100'000, "e", false);
  // Worker 2's breaker half-opens only at 1.1 s; worker 0 still turns suspect first.
  EXPECT_EQ(h.next_change_us(100'000), 250'000);
  h.beat(0, 240'000);
  h.beat(1, 240'000);
  EXPECT_EQ(h.next_change_us(240'000), 290'000);  // worker 2's heartbeat (the breaker ends at 1.1 s)
}

TEST(WorkerHealth, ApplyWritesEveryView) {
  testing::ViewBuilder b;
  b.add_worker().add_worker();
  WorkerHealth h(2, options(), 0);
  h.beat(1, 300'000);
  b.worker(0).health = Health::kUp;
  b.worker(1).health = Health::kDown;
  // apply() takes the driver's vector; a ViewBuilder's is reached through its view.
  std::vector<WorkerView> views = b.view().all();
  h.apply(views, 300'000);
  EXPECT_EQ(views[0].health, Health::kSuspect);  // 3 misses
  EXPECT_EQ(views[1].health, Health::kUp);
}

TEST(WorkerHealth, HealthNames) {
  EXPECT_STREQ(health_name(Health::kUp), "up");
  EXPECT_STREQ(health_name(Health::kSuspect), "suspect");
  EXPECT_STREQ(health_name(Health::kDown), "down");
}

}  // namespace
}  // namespace twinfer
