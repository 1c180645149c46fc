#include "serving/health/heartbeat_monitor.h"

#include <functional>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::error_of;

// 100 ms beats; suspect after 2 misses, down after 5.
HeartbeatOptions options() { return HeartbeatOptions{100'000, 2, 5}; }

TEST(HeartbeatMonitor, SuspectThenDownAsMissesGrow) {
  HeartbeatMonitor m(2, options(), 1000);
  EXPECT_EQ(m.health(0, 1000), Health::kUp);
  EXPECT_EQ(m.misses(0, 1000 + 199'999), 1);
  EXPECT_EQ(m.health(0, 1000 + 199'999), Health::kUp);
  EXPECT_EQ(m.health(0, 1000 + 200'000), Health::kSuspect);
  EXPECT_EQ(m.health(0, 1000 + 499'999), Health::kSuspect);
  EXPECT_EQ(m.health(0, 1000 + 500'000), Health::kDown);
  EXPECT_EQ(m.misses(0, 1000 + 500'000), 5);
  // Before the start nothing is missed.
  EXPECT_EQ(m.misses(0, 0), 0);
}

TEST(HeartbeatMonitor, BeatResetsMissesAndBringsADownWorkerBack) {
  HeartbeatMonitor m(2, options(), 0);
  EXPECT_EQ(m.health(1, 600'000), Health::kDown);
  m.beat(1, 600'000);
  EXPECT_EQ(m.health(1, 600'000), Health::kUp);
  EXPECT_EQ(m.health(1, 799'999), Health::kUp);
  EXPECT_EQ(m.health(1, 800'000), Health::kSuspect);
  // Worker 0 never beat: its misses count from the start.
  EXPECT_EQ(m.health(0, 600'000), Health::kDown);
}

TEST(HeartbeatMonitor, MarkDownHoldsUntilTheNextBeat) {
  HeartbeatMonitor m(1, options(), 0);
  m.mark_down(0, 50'000);
  EXPECT_TRUE(m.marked_down(0));
  EXPECT_EQ(m.health(0, 50'000), Health::kDown);
  EXPECT_EQ(m.next_change_us(0, 50'000), kNever);
  m.beat(0, 70'000);
  EXPECT_FALSE(m.marked_down(0));
  EXPECT_EQ(m.health(0, 70'000), Health::kUp);
  EXPECT_EQ(m.next_change_us(0, 70'000), 270'000);
}

TEST(HeartbeatMonitor, NextChangeIsTheNextThreshold) {
  HeartbeatMonitor m(1, options(), 1000);
  EXPECT_EQ(m.next_change_us(0, 1000), 201'000);
  EXPECT_EQ(m.next_change_us(0, 150'000), 201'000);
  EXPECT_EQ(m.next_change_us(0, 201'000), 501'000);  // suspect now; down next
  EXPECT_EQ(m.next_change_us(0, 501'000), kNever);
}

TEST(HeartbeatMonitor, SuspectEqualToDownGoesStraightDown) {
  HeartbeatMonitor m(1, HeartbeatOptions{10, 3, 3}, 0);
  EXPECT_EQ(m.health(0, 29), Health::kUp);
  EXPECT_EQ(m.next_change_us(0, 0), 30);
  EXPECT_EQ(m.health(0, 30), Health::kDown);
}

TEST(HeartbeatMonitor, ALateBeatDoesNotMoveTheLastBeatBack) {
  HeartbeatMonitor m(1, options(), 0);
  m.beat(0, 300'000);
  m.beat(0, 250'000);
  EXPECT_EQ(m.misses(0, 499'999), 1);
  EXPECT_EQ(m.next_change_us(0, 300'000), 500'000);
}

TEST(HeartbeatMonitor, ReadsOptionsInMillisecondsAndChecksRanges) {
  nlohmann::json j = {{"interval_ms", 50}, {"suspect_after_misses", 3}, {"down_after_misses", 4}};
  JsonParams p(j, "hb", {});
  HeartbeatOptions o = read_heartbeat_options(p);
  EXPECT_EQ(o.interval_us, 50'000);
  EXPECT_EQ(o.suspect_after_misses, 3);
  EXPECT_EQ(o.down_after_misses, 4);

  nlohmann::json bad = {{"suspect_after_misses", 3}, {"down_after_misses", 2}};
  JsonParams pb(bad, "hb", {});
  EXPECT_EQ(error_of([&] { read_heartbeat_options(pb); }), "hb.down_after_misses: must be >= suspect_after_misses (3)");
  nlohmann::json zero = {{"interval_ms", 0}};
  JsonParams pz(zero, "hb", {});
  EXPECT_EQ(error_of([&] { read_heartbeat_options(pz); }), "hb.interval_ms: must be > 0");
}

}  // namespace
}  // namespace twinfer
