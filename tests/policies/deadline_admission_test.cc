#include "policies/admission/deadline_admission.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::FakeCostModel;
using testing::make_request;
using testing::test_device;
using testing::ViewBuilder;

DeadlineAdmission::Options opts(bool predictive, double default_deadline_ms = 0) {
  DeadlineAdmission::Options o;
  o.predictive = predictive;
  o.default_deadline_ms = default_deadline_ms;
  return o;
}

Request due(TimeUs deadline_us) {
  Request r = make_request(1, 0, 100, 10);
  r.deadline_us = deadline_us;
  return r;
}

// FakeCostModel: 100 input + 10 output tokens take 3000 us on FAST (100 TFLOPS), 12000 us on SLOW (25).
class DeadlineAdmissionTest : public ::testing::Test {
 protected:
  DeadlineAdmissionTest() { b.add_worker(test_device("FAST", 100)).add_worker(test_device("SLOW", 25)); }
  FakeCostModel cost;
  ViewBuilder b;
};

TEST_F(DeadlineAdmissionTest, WithoutDeadlineAlwaysAdmitted) {
  DeadlineAdmission a(opts(true), &cost);
  EXPECT_TRUE(a.admit(make_request(1), b.view(kNever - 1)).admitted);
  EXPECT_FALSE(a.drop_before_start(make_request(1), kNever - 1).has_value());
  EXPECT_EQ(a.name(), "deadline");
}

TEST_F(DeadlineAdmissionTest, RejectsAtAdmissionOncePassed) {
  DeadlineAdmission a(opts(false), &cost);
  EXPECT_TRUE(a.admit(due(5000), b.view(4999)).admitted);
  AdmissionDecision d = a.admit(due(5000), b.view(5000));
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, "deadline passed before admission");
}

TEST_F(DeadlineAdmissionTest, PredictiveUsesTheFastestEligibleWorker) {
  DeadlineAdmission a(opts(true), &cost);
  EXPECT_TRUE(a.admit(due(10000), b.view(6000)).admitted);   // 9000
  EXPECT_TRUE(a.admit(due(10000), b.view(7000)).admitted);   // 10000, just in time
  AdmissionDecision d = a.admit(due(10000), b.view(7001));   // 10001
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, "deadline cannot be met: predicted completion at 10001 us, deadline 10000 us");
  // Only the slow worker is up: 12000 us of work.
  b.worker(0).health = Health::kDown;
  EXPECT_FALSE(a.admit(due(10000), b.view(0)).admitted);
  EXPECT_TRUE(a.admit(due(12000), b.view(0)).admitted);
}

TEST_F(DeadlineAdmissionTest, PredictionNeedsACostModelAndCanBeTurnedOff) {
  DeadlineAdmission no_cost(opts(true), nullptr);
  EXPECT_TRUE(no_cost.admit(due(10000), b.view(9999)).admitted);
  DeadlineAdmission off(opts(false), &cost);
  EXPECT_TRUE(off.admit(due(10000), b.view(9999)).admitted);
}

TEST_F(DeadlineAdmissionTest, DropsWaitingRequestsWhoseDeadlinePassed) {
  DeadlineAdmission a(opts(true), &cost);
  EXPECT_TRUE(a.may_drop_before_start());
  EXPECT_FALSE(a.drop_before_start(due(5000), 4999).has_value());
  std::optional<std::string> why = a.drop_before_start(due(5000), 5000);
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, "deadline passed before start");
}

TEST_F(DeadlineAdmissionTest, DefaultDeadlineIsRelativeToArrival) {
  DeadlineAdmission a(opts(false, /*default_deadline_ms=*/20), &cost);
  Request r = make_request(1, /*arrival_us=*/1000, 100, 10);
  EXPECT_EQ(a.effective_deadline_us(r), 21000);
  EXPECT_TRUE(a.admit(r, b.view(1000)).admitted);
  EXPECT_FALSE(a.drop_before_start(r, 20999).has_value());
  EXPECT_TRUE(a.drop_before_start(r, 21000).has_value());
  // A request's own deadline wins over the default.
  r.deadline_us = 50000;
  EXPECT_EQ(a.effective_deadline_us(r), 50000);
  EXPECT_FALSE(a.drop_before_start(r, 21000).has_value());
  DeadlineAdmission none(opts(false), &cost);
  EXPECT_EQ(none.effective_deadline_us(make_request(1, 1000)), kNever);
}

}  // namespace
}  // namespace twinfer
