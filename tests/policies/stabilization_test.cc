#include "policies/autoscalers/stabilization.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace twinfer {
namespace {

using nlohmann::json;

constexpr TimeUs kS = kUsPerS;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

PoolSample sample_at(TimeUs now_us, int ready, int min_replicas = 1, int max_replicas = 10) {
  PoolSample s;
  s.now_us = now_us;
  s.interval_us = 30 * kS;
  s.ready = ready;
  s.min_replicas = min_replicas;
  s.max_replicas = max_replicas;
  return s;
}

TEST(CeilReplicasTest, RoundsUpButForgivesFloatingPointNoise) {
  EXPECT_EQ(ceil_replicas(5 * (0.98 / 0.7)), 7);  // 7.000000000000001
  EXPECT_EQ(ceil_replicas(3.01), 4);
  EXPECT_EQ(ceil_replicas(0.2), 1);
  EXPECT_EQ(ceil_replicas(0), 0);
  EXPECT_EQ(ceil_replicas(-2), 0);
  EXPECT_EQ(ceil_replicas(std::numeric_limits<double>::quiet_NaN()), 0);
  EXPECT_EQ(ceil_replicas(1e12), 1000000);
}

TEST(DecimalTest, FormatsFixedDigits) {
  EXPECT_EQ(decimal(0.914), "0.91");
  EXPECT_EQ(decimal(3, 1), "3.0");
}

TEST(StabilizationWindowsTest, FirstDecisionDoesNotScaleDownAtOnce) {
  StabilizationWindows w(0, 300 * kS);
  auto r = w.apply(0, /*current=*/5, /*recommended=*/2);
  EXPECT_EQ(r.replicas, 5);
  EXPECT_EQ(r.down_ceiling, 5);
  EXPECT_EQ(r.up_floor, 2);
}

TEST(StabilizationWindowsTest, ScaleDownWaitsUntilTheWholeWindowAgrees) {
  StabilizationWindows w(0, 300 * kS);
  EXPECT_EQ(w.apply(0, 5, 5).replicas, 5);
  for (TimeUs t = 30; t <= 270; t += 30) EXPECT_EQ(w.apply(t * kS, 5, 2).replicas, 5) << "t=" << t;
  // The recommendation of 5 made at t=0 is now exactly one window old and no longer counts.
  EXPECT_EQ(w.apply(300 * kS, 5, 2).replicas, 2);
}

TEST(StabilizationWindowsTest, ScaleDownGoesToTheMaxOfTheWindow) {
  StabilizationWindows w(0, 300 * kS);
  w.apply(0, 5, 5);
  w.apply(100 * kS, 5, 3);
  w.apply(200 * kS, 5, 4);
  auto r = w.apply(350 * kS, 5, 2);  // counts t in (50, 350]: 3, 4, 2
  EXPECT_EQ(r.down_ceiling, 4);
  EXPECT_EQ(r.replicas, 4);
}

TEST(StabilizationWindowsTest, ScaleUpIsImmediateWithoutAWindow) {
  StabilizationWindows w(0, 300 * kS);
  EXPECT_EQ(w.apply(0, 2, 6).replicas, 6);
}

TEST(StabilizationWindowsTest, ScaleUpGoesToTheMinOfItsWindow) {
  StabilizationWindows w(60 * kS, 0);
  EXPECT_EQ(w.apply(0, 2, 2).replicas, 2);
  EXPECT_EQ(w.apply(30 * kS, 2, 6).replicas, 2);  // counts 2 (t=0) and 6
  auto r = w.apply(60 * kS, 2, 5);                // counts 6 (t=30) and 5
  EXPECT_EQ(r.up_floor, 5);
  EXPECT_EQ(r.replicas, 5);
}

TEST(StabilizationWindowsTest, WithinBothBoundsTheSizeStays) {
  StabilizationWindows w(60 * kS, 60 * kS);
  w.apply(0, 4, 4);
  w.apply(30 * kS, 4, 6);
  // Window holds {6, 2}: the floor 2 and the ceiling 6 both admit the current 4.
  EXPECT_EQ(w.apply(60 * kS, 4, 2).replicas, 4);
}

TEST(FinishDecisionTest, WritesTheChangeAndStabilizes) {
  StabilizationWindows w(0, 300 * kS);
  auto d = finish_decision(w, sample_at(0, 3), 5, 0, "busy");
  EXPECT_EQ(d.desired, 5);
  EXPECT_EQ(d.reason, "busy: 3 -> 5");
  d = finish_decision(w, sample_at(30 * kS, 5), 2, 0, "idle");
  EXPECT_EQ(d.desired, 5);
  EXPECT_EQ(d.reason, "idle: 5 -> 5 (scale-down window holds 5)");
}

TEST(FinishDecisionTest, LimitsTheScaleUpStep) {
  StabilizationWindows w(0, 0);
  auto d = finish_decision(w, sample_at(0, 3), 9, 2, "busy");
  EXPECT_EQ(d.desired, 5);
  EXPECT_TRUE(contains(d.reason, "3 -> 5 (step limit +2)")) << d.reason;
}

TEST(FinishDecisionTest, ClampsToThePoolBounds) {
  StabilizationWindows w(0, 0);
  auto d = finish_decision(w, sample_at(0, 3, 1, 4), 9, 0, "busy");
  EXPECT_EQ(d.desired, 4);
  EXPECT_TRUE(contains(d.reason, "3 -> 4 (clamped to [1, 4])")) << d.reason;
  d = finish_decision(w, sample_at(30 * kS, 3, 2, 4), 0, 0, "idle");
  EXPECT_EQ(d.desired, 2);
}

TEST(ReadScalingBehaviorTest, ReadsEveryKey) {
  json spec = {{"tolerance", 0.2}, {"scale_up_stabilization_s", 15}, {"scale_down_stabilization_s", 60},
               {"max_scale_up_step", 3}};
  JsonParams p(spec, "as");
  ScalingBehavior b;
  read_scaling_behavior(p, b);
  p.done();
  EXPECT_DOUBLE_EQ(b.tolerance, 0.2);
  EXPECT_DOUBLE_EQ(b.scale_up_stabilization_s, 15);
  EXPECT_DOUBLE_EQ(b.scale_down_stabilization_s, 60);
  EXPECT_EQ(b.max_scale_up_step, 3);
}

TEST(ReadScalingBehaviorTest, KeepsDefaultsAndRejectsNegativeValuesByKey) {
  json empty = json::object();
  JsonParams p(empty, "as");
  ScalingBehavior b;
  read_scaling_behavior(p, b);
  EXPECT_DOUBLE_EQ(b.tolerance, 0.1);
  EXPECT_DOUBLE_EQ(b.scale_down_stabilization_s, 300);
  for (const char* key : {"tolerance", "scale_up_stabilization_s", "scale_down_stabilization_s", "max_scale_up_step"}) {
    json spec = {{key, -1}};
    JsonParams bad(spec, "as");
    ScalingBehavior c;
    try {
      read_scaling_behavior(bad, c);
      ADD_FAILURE() << "no error for " << key;
    } catch (const Error& e) {
      EXPECT_TRUE(contains(e.what(), std::string("as.") + key + ": must be >= 0")) << e.what();
    }
  }
}

}  // namespace
}  // namespace twinfer
