#include "serving/protection.h"

#include <functional>

#include <gtest/gtest.h>

#include "policies/admission/accept_all_admission.h"
#include "core/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::error_of;

using nlohmann::json;
using testing::make_request;
using testing::ViewBuilder;

// Admits or rejects everything, counting its calls.
class CountingAdmission : public Admission {
 public:
  CountingAdmission(bool admit, std::string name) : admit_(admit), name_(std::move(name)) {}
  AdmissionDecision admit(const Request&, const ClusterView&) override {
    ++calls;
    return admit_ ? AdmissionDecision::admit() : AdmissionDecision::reject("rejected by " + name_);
  }
  std::string name() const override { return name_; }
  int calls = 0;

 private:
  bool admit_;
  std::string name_;
};

TEST(ParseProtection, EmptyObjectKeepsTheDefaults) {
  ProtectionOptions o = parse_protection(json::object(), "protection");
  EXPECT_EQ(o.health.heartbeat.interval_us, 100'000);
  EXPECT_EQ(o.health.heartbeat.down_after_misses, 5);
  EXPECT_TRUE(o.health.breaker.enabled);
  EXPECT_EQ(o.health.breaker.open_us, 5'000'000);
  EXPECT_EQ(o.retry.max_attempts, 3);
  EXPECT_EQ(o.retry.budget_window_us, 10'000'000);
  EXPECT_EQ(o.request_timeout_us, 0);
  EXPECT_EQ(o.limits.max_input_tokens, 0);
  EXPECT_EQ(o.limits.max_request_bytes, 4 << 20);
  EXPECT_EQ(o.shed, json("accept_all"));
}

TEST(ParseProtection, ReadsEveryKeyInItsUnit) {
  const json j = json::parse(R"({
    "heartbeat": {"interval_ms": 250, "suspect_after_misses": 1, "down_after_misses": 3},
    "circuit_breaker": {"enabled": false, "window": 50, "min_calls": 20, "failure_ratio": 0.3,
                        "consecutive_failures": 7, "slow_call_ms": 800, "slow_call_ratio": 0.6,
                        "open_ms": 2000, "half_open_probes": 1},
    "retry": {"max_attempts": 2, "budget_ratio": 0.1, "budget_min_retries": 3, "budget_window_s": 30,
              "backoff_base_ms": 5, "backoff_max_ms": 100, "jitter": 0},
    "request_timeout_ms": 1500.5,
    "limits": {"max_input_tokens": 8192, "max_output_tokens": 2048, "max_queued_requests": 1000,
               "max_request_bytes": 65536},
    "shed": {"name": "priority_shed", "levels": [8, 16]}
  })");
  ProtectionOptions o = parse_protection(j, "protection");
  EXPECT_EQ(o.health.heartbeat.interval_us, 250'000);
  EXPECT_EQ(o.health.heartbeat.suspect_after_misses, 1);
  EXPECT_EQ(o.health.heartbeat.down_after_misses, 3);
  EXPECT_FALSE(o.health.breaker.enabled);
  EXPECT_EQ(o.health.breaker.window, 50);
  EXPECT_EQ(o.health.breaker.min_calls, 20);
  EXPECT_DOUBLE_EQ(o.health.breaker.failure_ratio, 0.3);
  EXPECT_EQ(o.health.breaker.consecutive_failures, 7);
  EXPECT_EQ(o.health.breaker.slow_call_us, 800'000);
  EXPECT_DOUBLE_EQ(o.health.breaker.slow_call_ratio, 0.6);
  EXPECT_EQ(o.health.breaker.open_us, 2'000'000);
  EXPECT_EQ(o.health.breaker.half_open_probes, 1);
  EXPECT_EQ(o.retry.max_attempts, 2);
  EXPECT_DOUBLE_EQ(o.retry.budget_ratio, 0.1);
  EXPECT_EQ(o.retry.budget_min_retries, 3);
  EXPECT_EQ(o.retry.budget_window_us, 30'000'000);
  EXPECT_EQ(o.retry.backoff_base_us, 5000);
  EXPECT_EQ(o.retry.backoff_max_us, 100'000);
  EXPECT_DOUBLE_EQ(o.retry.jitter, 0);
  EXPECT_EQ(o.request_timeout_us, 1'500'500);
  EXPECT_EQ(o.limits.max_input_tokens, 8192);
  EXPECT_EQ(o.limits.max_output_tokens, 2048);
  EXPECT_EQ(o.limits.max_queued_requests, 1000);
  EXPECT_EQ(o.limits.max_request_bytes, 65536);
  EXPECT_EQ(o.shed, (json{{"name", "priority_shed"}, {"levels", {8, 16}}}));
}

TEST(ParseProtection, ErrorsNameTheKeyPath) {
  auto parse = [](const char* text) { parse_protection(json::parse(text), "protection"); };
  EXPECT_EQ(error_of([&] { parse(R"({"retry": {"jitter": 2}})"); }), "protection.retry.jitter: must be in [0, 1]");
  EXPECT_EQ(error_of([&] { parse(R"({"heartbeat": {"interval": 5}})"); }),
            "protection.heartbeat: unknown key 'interval'; valid keys: down_after_misses, interval_ms, "
            "suspect_after_misses");
  EXPECT_NE(error_of([&] { parse(R"({"retries": {}})"); }).find("protection: unknown key 'retries'"),
            std::string::npos);
  EXPECT_EQ(error_of([&] { parse(R"({"circuit_breaker": {"window": "big"}})"); }),
            "protection.circuit_breaker.window: expected an integer, got \"big\"");
  EXPECT_EQ(error_of([&] { parse(R"({"limits": {"max_request_bytes": 0}})"); }),
            "protection.limits.max_request_bytes: must be > 0");
  EXPECT_EQ(error_of([&] { parse(R"({"limits": {"max_input_tokens": -1}})"); }),
            "protection.limits.max_input_tokens: must be >= 0 (0: no limit)");
  EXPECT_EQ(error_of([&] { parse(R"({"request_timeout_ms": -5})"); }),
            "protection.request_timeout_ms: must be >= 0 (0: none)");
  EXPECT_EQ(error_of([&] { parse(R"({"shed": 3})"); }),
            "protection.shed: expected an admission name or an object with \"name\", got 3");
  EXPECT_EQ(error_of([&] { parse(R"({"heartbeat": 3})"); }), "protection.heartbeat: expected an object, got 3");
  EXPECT_EQ(error_of([&] { parse(R"([])"); }), "protection: expected an object, got []");
}

TEST(AdmitRequest, ChecksLimitsFirst) {
  ViewBuilder b;
  b.add_worker();
  ProtectionOptions p;
  p.limits.max_input_tokens = 1000;
  p.limits.max_output_tokens = 100;
  p.limits.max_queued_requests = 5;
  CountingAdmission shed(true, "shed"), admission(true, "admission");
  // Over a limit and for an unknown model: the limit is reported.
  EXPECT_EQ(admit_request(make_request(1, 0, 1001, 10, "x"), b.view(), 0, p, shed, admission).reason,
            "input of 1001 tokens exceeds protection.limits.max_input_tokens 1000");
  EXPECT_EQ(admit_request(make_request(2, 0, 1000, 101), b.view(), 0, p, shed, admission).reason,
            "output of 101 tokens exceeds protection.limits.max_output_tokens 100");
  EXPECT_EQ(admit_request(make_request(3), b.view(), 5, p, shed, admission).reason,
            "queue full: 5 requests queued (protection.limits.max_queued_requests = 5)");
  EXPECT_EQ(shed.calls + admission.calls, 0);
  EXPECT_TRUE(admit_request(make_request(4, 0, 1000, 100), b.view(), 4, p, shed, admission).admitted);
  EXPECT_EQ(shed.calls, 1);
  EXPECT_EQ(admission.calls, 1);
}

TEST(AdmitRequest, ThenServableThenShedThenAdmission) {
  ViewBuilder b;
  b.add_worker();
  b.worker(0).kv_blocks_total = 4;
  b.worker(0).kv_block_tokens = 16;
  ProtectionOptions p;
  CountingAdmission shed(false, "shed"), admission(true, "admission");
  EXPECT_EQ(admit_request(make_request(1, 0, 10, 10, "x"), b.view(), 0, p, shed, admission).reason,
            "no worker serves model 'x'");
  EXPECT_EQ(admit_request(make_request(2, 0, 60, 10), b.view(), 0, p, shed, admission).reason,
            "needs 70 tokens of KV cache (input + output); the largest KV cache for any model holds 64");
  EXPECT_EQ(shed.calls, 0);
  // A shed request never reaches admission (a token bucket keeps its tokens).
  EXPECT_EQ(admit_request(make_request(3, 0, 10, 10), b.view(), 0, p, shed, admission).reason, "rejected by shed");
  EXPECT_EQ(shed.calls, 1);
  EXPECT_EQ(admission.calls, 0);
  CountingAdmission pass(true, "pass"), refuse(false, "admission");
  EXPECT_EQ(admit_request(make_request(4, 0, 10, 10), b.view(), 0, p, pass, refuse).reason,
            "rejected by admission");
  EXPECT_EQ(refuse.calls, 1);
}

// Protection sets no limits by default: the model's context is the only bound on a request's size.
TEST(AdmitRequest, NoLimitsByDefault) {
  ViewBuilder b;
  ModelSpec long_context = testing::test_model();
  long_context.max_context = 4'000'000;
  b.add_worker(testing::test_device(), long_context);
  ProtectionOptions p;
  AcceptAllAdmission shed, admission;
  const Request huge = make_request(1, 0, 1'000'000, 1'000'000);
  EXPECT_TRUE(admit_request(huge, b.view(), 1'000'000, p, shed, admission).admitted);
  const Request longer = make_request(2, 0, 3'000'000, 1'000'001);
  EXPECT_EQ(admit_request(longer, b.view(), 0, p, shed, admission).reason,
            "needs 4000001 tokens of context (input + output); the longest context of any model is 4000000 "
            "(max_context)");
}

TEST(OversizeReason, ComparesWithMaxRequestBytes) {
  RequestLimits l;
  EXPECT_EQ(oversize_reason(4 << 20, l), "");
  EXPECT_EQ(oversize_reason((4 << 20) + 1, l),
            "request of 4194305 bytes exceeds protection.limits.max_request_bytes 4194304");
}

}  // namespace
}  // namespace twinfer
