#include "policies/admission/accept_all_admission.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::ViewBuilder;

TEST(AcceptAllAdmission, AdmitsEverythingAndDropsNothing) {
  ViewBuilder b;
  b.add_worker();
  b.worker(0).waiting = 100000;
  b.worker(0).health = Health::kDown;
  AcceptAllAdmission admission;
  Request late = make_request(1, 0, 100, 10, "not-served");
  late.deadline_us = 5;
  EXPECT_TRUE(admission.admit(late, b.view(1000)).admitted);
  EXPECT_FALSE(admission.may_drop_before_start());
  EXPECT_FALSE(admission.drop_before_start(late, 1000).has_value());
  EXPECT_EQ(admission.name(), "accept_all");
}

}  // namespace
}  // namespace twinfer
