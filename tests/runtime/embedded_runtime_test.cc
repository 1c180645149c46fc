#include "runtime/engine/embedded_runtime.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "policies/registry.h"
#include "tests/runtime/runtime_testing.h"

namespace twinfer::runtime {
namespace {

void expect_conserved(const nlohmann::json& s, std::size_t n) {
  const auto& q = s["requests"];
  EXPECT_EQ(q["total"].get<std::size_t>(), n);
  EXPECT_EQ(q["completed"].get<std::size_t>() + q["rejected"].get<std::size_t>() + q["dropped"].get<std::size_t>(), n);
}

class EmbeddedRouterTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EmbeddedRouterTest, ServesTheTraceWithEveryRequestEndingOnce) {
  RunConfig c = testing::cpu_tiny_config({"policies.router=" + GetParam()});
  Trace t = testing::small_trace(16, 80);
  EmbeddedRunOptions opt;
  opt.out_dir = ::testing::TempDir() + "/embedded_" + GetParam() + "_" + std::to_string(::getpid());
  auto s = run_embedded(c, t, opt);
  expect_conserved(s, t.requests.size());
  EXPECT_EQ(s["requests"]["completed"], t.requests.size());
  EXPECT_GT(s["run"]["steps"].get<int>(), 0);
  std::ifstream csv(opt.out_dir + "/requests.csv");
  std::stringstream ss;
  ss << csv.rdbuf();
  const std::string text = ss.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 17);
  // Latency is measured from the trace arrival on the run's clock: never negative, never absurd.
  EXPECT_GT(s["latency_ms"]["p50"].get<double>(), 0);
  EXPECT_LT(s["latency_ms"]["max"].get<double>(), 60000);
}

INSTANTIATE_TEST_SUITE_P(Routers, EmbeddedRouterTest, ::testing::ValuesIn(router_registry().names()));

TEST(EmbeddedRuntime, RequestLevelBatcherAndRejectingAdmission) {
  RunConfig c = testing::cpu_tiny_config(
      {"policies.batcher={\"name\":\"request_level\",\"max_batch_size\":4,\"max_queue_delay_us\":1000}",
       "policies.admission={\"name\":\"token_bucket\",\"rate_per_s\":5,\"burst\":4}"});
  Trace t = testing::small_trace(20, 200);
  auto s = run_embedded(c, t, {});
  expect_conserved(s, t.requests.size());
  EXPECT_GT(s["requests"]["rejected"].get<int>(), 0);
  EXPECT_EQ(s["reasons"]["rejected"].begin().key(), "rate limited (token_bucket)");
}

TEST(EmbeddedRuntime, UnknownDeviceIsAClearError) {
  EmbeddedRunOptions opt;
  opt.device = "tpu";
  try {
    run_embedded(testing::cpu_tiny_config(), testing::small_trace(2, 10), opt);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown device 'tpu'; valid: cpu, cuda:N"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace twinfer::runtime
