#include "policies/admission/queue_bound_admission.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::test_device;
using testing::test_model;
using testing::ViewBuilder;

QueueBoundAdmission::Options bounds(int max_waiting, std::int64_t max_total_waiting) {
  QueueBoundAdmission::Options o;
  o.max_waiting = max_waiting;
  o.max_total_waiting = max_total_waiting;
  return o;
}

TEST(QueueBoundAdmission, PerWorkerBoundRejectsWhenEveryWorkerIsFull) {
  ViewBuilder b;
  b.add_worker().add_worker();
  QueueBoundAdmission a(bounds(4, 0));
  b.worker(0).waiting = 4;
  b.worker(1).waiting = 3;
  EXPECT_TRUE(a.admit(make_request(1), b.view()).admitted);
  b.worker(1).waiting = 4;
  AdmissionDecision d = a.admit(make_request(2), b.view());
  EXPECT_FALSE(d.admitted);
  EXPECT_NE(d.reason.find("max_waiting = 4"), std::string::npos) << d.reason;
  // Running requests do not count.
  b.worker(1).waiting = 3;
  b.worker(1).running = 50;
  EXPECT_TRUE(a.admit(make_request(3), b.view()).admitted);
  EXPECT_EQ(a.name(), "queue_bound");
}

TEST(QueueBoundAdmission, OnlyEligibleWorkersCount) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker(test_device(), test_model("other"));
  QueueBoundAdmission a(bounds(4, 0));
  b.worker(0).waiting = 4;
  b.worker(1).waiting = 0;
  b.worker(1).health = Health::kDown;  // room, but down
  b.worker(2).waiting = 0;             // room, but another model
  EXPECT_FALSE(a.admit(make_request(1, 0, 100, 10, "m"), b.view()).admitted);
  EXPECT_TRUE(a.admit(make_request(2, 0, 100, 10, "other"), b.view()).admitted);
  // Nobody serves "x": admitted, for the router to reject with its reason.
  EXPECT_TRUE(a.admit(make_request(3, 0, 100, 10, "x"), b.view()).admitted);
}

TEST(QueueBoundAdmission, ClusterBoundCountsAllWaiting) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker(test_device(), test_model("other"));
  QueueBoundAdmission a(bounds(0, 10));
  b.worker(0).waiting = 3;
  b.worker(1).waiting = 3;
  b.worker(2).waiting = 3;
  b.worker(2).running = 7;
  EXPECT_TRUE(a.admit(make_request(1), b.view()).admitted);  // 9 waiting
  b.worker(2).waiting = 4;
  AdmissionDecision d = a.admit(make_request(2), b.view());  // 10 waiting
  EXPECT_FALSE(d.admitted);
  EXPECT_NE(d.reason.find("max_total_waiting = 10"), std::string::npos) << d.reason;
}

TEST(QueueBoundAdmission, BothBoundsApply) {
  ViewBuilder b;
  b.add_worker().add_worker();
  QueueBoundAdmission a(bounds(5, 8));
  b.worker(0).waiting = 4;
  b.worker(1).waiting = 4;  // each below 5, but 8 in total
  EXPECT_FALSE(a.admit(make_request(1), b.view()).admitted);
  b.worker(1).waiting = 3;
  EXPECT_TRUE(a.admit(make_request(2), b.view()).admitted);
}

TEST(QueueBoundAdmission, NeedsABound) {
  nlohmann::json none = nlohmann::json::object();
  JsonParams p(none, "admission");
  EXPECT_THROW(QueueBoundAdmission::read_options(p), Error);
  nlohmann::json negative = {{"max_waiting", -1}};
  JsonParams pn(negative, "admission");
  EXPECT_THROW(QueueBoundAdmission::read_options(pn), Error);
  nlohmann::json ok = {{"max_total_waiting", 100}};
  JsonParams po(ok, "admission");
  QueueBoundAdmission::Options o = QueueBoundAdmission::read_options(po);
  EXPECT_EQ(o.max_waiting, 0);
  EXPECT_EQ(o.max_total_waiting, 100);
}

}  // namespace
}  // namespace twinfer
