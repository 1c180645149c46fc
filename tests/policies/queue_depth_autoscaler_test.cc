#include "policies/autoscalers/queue_depth_autoscaler.h"

#include <gtest/gtest.h>

namespace twinfer {
namespace {

constexpr TimeUs kS = kUsPerS;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

PoolSample queued(TimeUs now_s, int ready, int waiting, int running = 0) {
  PoolSample s;
  s.now_us = now_s * kS;
  s.interval_us = 30 * kS;
  s.ready = ready;
  s.min_replicas = 1;
  s.max_replicas = 20;
  s.waiting = waiting;
  s.running = running;
  return s;
}

QueueDepthAutoscaler::Options no_windows() {
  QueueDepthAutoscaler::Options o;
  o.behavior.scale_down_stabilization_s = 0;
  return o;
}

TEST(QueueDepthAutoscalerTest, DesiredIsCeilOfWaitingOverTarget) {
  QueueDepthAutoscaler a(QueueDepthAutoscaler::Options{});
  auto d = a.decide(queued(0, 2, 10));  // 10 / 4 = 2.5
  EXPECT_EQ(d.desired, 3);
  EXPECT_TRUE(contains(d.reason, "waiting 10 / 4.00 per replica")) << d.reason;
  EXPECT_TRUE(contains(d.reason, "2 -> 3")) << d.reason;
}

TEST(QueueDepthAutoscalerTest, OutstandingCountsRunningToo) {
  auto o = no_windows();
  o.metric = QueueDepthAutoscaler::Metric::kOutstanding;
  QueueDepthAutoscaler a(o);
  EXPECT_EQ(a.decide(queued(0, 2, 10, 6)).desired, 4);  // 16 / 4
}

TEST(QueueDepthAutoscalerTest, HoldsWithinTheToleranceBand) {
  QueueDepthAutoscaler a(no_windows());
  auto d = a.decide(queued(0, 4, 17));  // 17 / 16 = 1.06
  EXPECT_EQ(d.desired, 4);
  EXPECT_TRUE(contains(d.reason, "within tolerance")) << d.reason;
  EXPECT_EQ(a.decide(queued(30, 4, 15)).desired, 4);  // 0.94
  EXPECT_EQ(a.decide(queued(60, 4, 18)).desired, 5);  // 1.125: 18 / 4 = 4.5
}

TEST(QueueDepthAutoscalerTest, BelowActivationRecommendsMinReplicas) {
  auto o = no_windows();
  o.activation = 5;
  QueueDepthAutoscaler a(o);
  auto d = a.decide(queued(0, 3, 5));
  EXPECT_EQ(d.desired, 1);
  EXPECT_TRUE(contains(d.reason, "inactive")) << d.reason;
  EXPECT_EQ(a.decide(queued(30, 1, 6)).desired, 2);  // active: 6 / 4 = 1.5
}

TEST(QueueDepthAutoscalerTest, ScalesFromAndToZero) {
  QueueDepthAutoscaler a(no_windows());
  PoolSample s = queued(0, 0, 1);
  s.min_replicas = 0;
  EXPECT_EQ(a.decide(s).desired, 1);  // 1 / 4 rounds up to one replica
  s = queued(30, 1, 0);
  s.min_replicas = 0;
  EXPECT_EQ(a.decide(s).desired, 0);
}

TEST(QueueDepthAutoscalerTest, ScaleDownWaitsForTheWindowScaleUpDoesNot) {
  QueueDepthAutoscaler::Options o;
  o.behavior.scale_down_stabilization_s = 120;
  QueueDepthAutoscaler a(o);
  EXPECT_EQ(a.decide(queued(0, 2, 30)).desired, 8);  // at once
  for (TimeUs t = 30; t <= 90; t += 30) EXPECT_EQ(a.decide(queued(t, 8, 4)).desired, 8) << "t=" << t;
  EXPECT_EQ(a.decide(queued(120, 8, 4)).desired, 1);
}

TEST(QueueDepthAutoscalerTest, ClampsToMax) {
  QueueDepthAutoscaler a(no_windows());
  PoolSample s = queued(0, 2, 100);
  s.max_replicas = 6;
  auto d = a.decide(s);
  EXPECT_EQ(d.desired, 6);
  EXPECT_TRUE(contains(d.reason, "clamped to [1, 6]")) << d.reason;
}

}  // namespace
}  // namespace twinfer
