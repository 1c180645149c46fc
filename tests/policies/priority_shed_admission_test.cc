#include "policies/admission/priority_shed_admission.h"

#include <functional>

#include <gtest/gtest.h>

#include "core/error.h"
#include "policies/registry.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::error_of;

using testing::make_request;
using testing::test_device;
using testing::test_model;
using testing::ViewBuilder;

PriorityShedAdmission::Options levels(PriorityShedAdmission::Signal signal, std::vector<double> thresholds) {
  PriorityShedAdmission::Options o;
  o.signal = signal;
  o.levels = std::move(thresholds);
  return o;
}

Request with_priority(RequestId id, int priority) { return make_request(id, 0, 100, 10, "", priority); }

TEST(PriorityShedAdmission, ShedsLowPrioritiesFirstOnQueuePerWorker) {
  ViewBuilder b;
  b.add_worker().add_worker();
  b.worker(0).waiting = 10;
  b.worker(1).waiting = 15;
  b.worker(1).running = 100;  // running requests are not queued
  PriorityShedAdmission a(levels(PriorityShedAdmission::Signal::kQueuePerWorker, {8, 16}));
  AdmissionDecision d = a.admit(with_priority(1, 0), b.view());
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, "shed: queue_per_worker 12.5 > 8 (priority 0)");
  EXPECT_TRUE(a.admit(with_priority(2, 1), b.view()).admitted);  // 12.5 <= 16
  EXPECT_TRUE(a.admit(with_priority(3, 7), b.view()).admitted);  // past the last level: the last one
  EXPECT_EQ(a.admit(with_priority(4, -3), b.view()).reason, "shed: queue_per_worker 12.5 > 8 (priority -3)");
  b.worker(1).waiting = 6;  // mean 8: not above the threshold
  EXPECT_TRUE(a.admit(with_priority(5, 0), b.view()).admitted);
  EXPECT_EQ(a.name(), "priority_shed");
}

TEST(PriorityShedAdmission, CountsOnlyEligibleWorkers) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker(test_device(), test_model("other"));
  b.worker(0).waiting = 4;
  b.worker(1).waiting = 100;
  b.worker(1).health = Health::kDown;
  b.worker(2).waiting = 100;
  PriorityShedAdmission a(levels(PriorityShedAdmission::Signal::kQueuePerWorker, {5}));
  const Request for_m = make_request(1, 0, 100, 10, "m");
  EXPECT_DOUBLE_EQ(a.signal(for_m, b.view()), 4.0);
  EXPECT_TRUE(a.admit(for_m, b.view()).admitted);
  EXPECT_FALSE(a.admit(make_request(2, 0, 100, 10, "other"), b.view()).admitted);
  // A suspect worker still takes requests, so it counts.
  b.worker(1).health = Health::kSuspect;
  EXPECT_DOUBLE_EQ(a.signal(for_m, b.view()), 52.0);
  // Nobody serves "x": admitted, for the router to reject with its reason.
  EXPECT_TRUE(a.admit(make_request(3, 0, 100, 10, "x"), b.view()).admitted);
}

TEST(PriorityShedAdmission, WorkSignalIsMillisecondsPerWorker) {
  ViewBuilder b;
  b.add_worker().add_worker();
  b.worker(0).outstanding_work_us = 3'000'000;
  b.worker(1).outstanding_work_us = 1'000'500;
  PriorityShedAdmission a(levels(PriorityShedAdmission::Signal::kWorkMsPerWorker, {1500, 2500}));
  AdmissionDecision d = a.admit(with_priority(1, 0), b.view());
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, "shed: work_ms_per_worker 2000.25 > 1500 (priority 0)");
  EXPECT_TRUE(a.admit(with_priority(2, 1), b.view()).admitted);
}

TEST(PriorityShedAdmission, BuiltFromTheRegistryWithDefaultsAndChecks) {
  PolicyContext ctx;
  auto a = admission_registry().make(nlohmann::json{{"name", "priority_shed"}}, ctx, "protection.shed");
  ASSERT_EQ(a->name(), "priority_shed");
  ViewBuilder b;
  b.add_worker();
  b.worker(0).waiting = 33;  // default levels [32, 64, 128]
  EXPECT_EQ(a->admit(with_priority(1, 0), b.view()).reason, "shed: queue_per_worker 33 > 32 (priority 0)");
  EXPECT_TRUE(a->admit(with_priority(2, 1), b.view()).admitted);

  auto work = admission_registry().make(nlohmann::json{{"name", "priority_shed"}, {"signal", "work_ms_per_worker"}},
                                        ctx, "protection.shed");
  b.worker(0).outstanding_work_us = 1'000'001;  // default levels [1000, 2000, 4000] ms
  EXPECT_EQ(work->admit(with_priority(3, 0), b.view()).reason,
            "shed: work_ms_per_worker 1000.001 > 1000 (priority 0)");

  EXPECT_EQ(error_of([&] {
              admission_registry().make(nlohmann::json{{"name", "priority_shed"}, {"signal", "load"}}, ctx, "s");
            }),
            "s (priority_shed).signal: must be \"queue_per_worker\" or \"work_ms_per_worker\", got \"load\"");
  EXPECT_EQ(error_of([&] {
              admission_registry().make(nlohmann::json{{"name", "priority_shed"}, {"levels", {8, 4}}}, ctx, "s");
            }),
            "s (priority_shed).levels: thresholds must be ascending");
  EXPECT_EQ(error_of([&] {
              admission_registry().make(nlohmann::json{{"name", "priority_shed"}, {"levels", nlohmann::json::array()}},
                                        ctx, "s");
            }),
            "s (priority_shed).levels: must hold at least one threshold");
  EXPECT_NE(error_of([&] {
              admission_registry().make(nlohmann::json{{"name", "priority_shed"}, {"level", {1}}}, ctx, "s");
            }).find("unknown key 'level'"),
            std::string::npos);
}

}  // namespace
}  // namespace twinfer
