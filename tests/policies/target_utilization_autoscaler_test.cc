#include "policies/autoscalers/target_utilization_autoscaler.h"

#include <gtest/gtest.h>

namespace twinfer {
namespace {

constexpr TimeUs kS = kUsPerS;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

PoolSample busy(TimeUs now_s, int ready, double utilization, int starting = 0) {
  PoolSample s;
  s.now_us = now_s * kS;
  s.interval_us = 30 * kS;
  s.ready = ready;
  s.starting = starting;
  s.min_replicas = 1;
  s.max_replicas = 20;
  s.utilization = utilization;
  return s;
}

TargetUtilizationAutoscaler::Options with_target(double target, double down_window_s = 300) {
  TargetUtilizationAutoscaler::Options o;
  o.target = target;
  o.behavior.scale_down_stabilization_s = down_window_s;
  return o;
}

TEST(TargetUtilizationAutoscalerTest, ScalesUpToCeilOfReadyTimesRatio) {
  TargetUtilizationAutoscaler a(with_target(0.6));
  auto d = a.decide(busy(0, 3, 0.91));  // 3 * 0.91 / 0.6 = 4.55
  EXPECT_EQ(d.desired, 5);
  EXPECT_TRUE(contains(d.reason, "utilization 0.91 vs target 0.60")) << d.reason;
  EXPECT_TRUE(contains(d.reason, "3 -> 5")) << d.reason;
}

TEST(TargetUtilizationAutoscalerTest, AnExactRatioIsNotRoundedUpByNoise) {
  TargetUtilizationAutoscaler a(with_target(0.7));
  EXPECT_EQ(a.decide(busy(0, 5, 0.98)).desired, 7);  // 5 * 1.4, computed as 7.000000000000001
}

TEST(TargetUtilizationAutoscalerTest, HoldsWithinTheToleranceBand) {
  TargetUtilizationAutoscaler a(with_target(0.7));
  auto d = a.decide(busy(0, 4, 0.75));  // ratio 1.071: within 0.1
  EXPECT_EQ(d.desired, 4);
  EXPECT_TRUE(contains(d.reason, "within tolerance")) << d.reason;
  EXPECT_EQ(a.decide(busy(30, 4, 0.66)).desired, 4);  // ratio 0.943
  EXPECT_EQ(a.decide(busy(60, 4, 0.78)).desired, 5);  // ratio 1.114: 4 * 1.114 = 4.46
}

TEST(TargetUtilizationAutoscalerTest, KvMetricReadsKvUse) {
  auto o = with_target(0.6);
  o.metric = TargetUtilizationAutoscaler::Metric::kKv;
  TargetUtilizationAutoscaler a(o);
  PoolSample s = busy(0, 2, 0.1);
  s.kv_used_fraction = 0.9;
  auto d = a.decide(s);
  EXPECT_EQ(d.desired, 3);
  EXPECT_TRUE(contains(d.reason, "kv use 0.90")) << d.reason;
}

TEST(TargetUtilizationAutoscalerTest, ScaleDownWaitsForTheWindowScaleUpDoesNot) {
  TargetUtilizationAutoscaler a(with_target(0.7));
  EXPECT_EQ(a.decide(busy(0, 4, 0.7)).desired, 4);
  for (TimeUs t = 30; t <= 270; t += 30) EXPECT_EQ(a.decide(busy(t, 4, 0.35)).desired, 4) << "t=" << t;
  EXPECT_EQ(a.decide(busy(300, 4, 0.35)).desired, 2);  // 4 * 0.5
  EXPECT_EQ(a.decide(busy(330, 2, 1.0)).desired, 3);   // 2 * 1.43 = 2.86: at once
}

TEST(TargetUtilizationAutoscalerTest, StartingReplicasCountAsIdleForAScaleUp) {
  TargetUtilizationAutoscaler a(with_target(0.6));
  // 2 ready at 0.9: 3 wanted, and 4 are already coming (2 * 0.9 / (4 * 0.6) = 0.75).
  auto d = a.decide(busy(0, 2, 0.9, /*starting=*/2));
  EXPECT_EQ(d.desired, 4);
  EXPECT_TRUE(contains(d.reason, "2 starting")) << d.reason;
  // 2 ready at 1.0 for a target of 0.4: 2 * 2.5 = 5 > 4, so one more.
  TargetUtilizationAutoscaler b(with_target(0.4));
  EXPECT_EQ(b.decide(busy(0, 2, 1.0, 2)).desired, 5);
}

TEST(TargetUtilizationAutoscalerTest, WithNoReadyReplicaKeepsTheCurrentSize) {
  TargetUtilizationAutoscaler a(with_target(0.6, 0));
  auto d = a.decide(busy(0, 0, 0.0, /*starting=*/2));
  EXPECT_EQ(d.desired, 2);
  EXPECT_TRUE(contains(d.reason, "no ready replica")) << d.reason;
}

TEST(TargetUtilizationAutoscalerTest, ClampsToMinAndMax) {
  TargetUtilizationAutoscaler a(with_target(0.5, 0));
  PoolSample s = busy(0, 3, 1.0);
  s.max_replicas = 4;
  EXPECT_EQ(a.decide(s).desired, 4);  // 6 wanted
  s = busy(30, 3, 0.0);
  s.min_replicas = 2;
  EXPECT_EQ(a.decide(s).desired, 2);  // 0 wanted
}

TEST(TargetUtilizationAutoscalerTest, MaxScaleUpStepLimitsEachDecision) {
  auto o = with_target(0.5);
  o.behavior.max_scale_up_step = 1;
  TargetUtilizationAutoscaler a(o);
  EXPECT_EQ(a.decide(busy(0, 2, 1.0)).desired, 3);   // 4 wanted
  EXPECT_EQ(a.decide(busy(30, 3, 1.0)).desired, 4);  // 6 wanted
}

TEST(TargetUtilizationAutoscalerTest, ScaleUpWindowDelaysAScaleUp) {
  auto o = with_target(0.5);
  o.behavior.scale_up_stabilization_s = 60;
  TargetUtilizationAutoscaler a(o);
  EXPECT_EQ(a.decide(busy(0, 2, 0.5)).desired, 2);
  EXPECT_EQ(a.decide(busy(30, 2, 1.0)).desired, 2);  // 4 wanted, but 2 was recommended at t=0
  EXPECT_EQ(a.decide(busy(60, 2, 1.0)).desired, 4);
}

}  // namespace
}  // namespace twinfer
