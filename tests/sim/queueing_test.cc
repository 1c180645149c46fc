// Queueing sanity: one worker serving one request at a time under Poisson arrivals must reproduce
// the textbook mean waiting times of M/D/1 and M/M/1 queues.
#include <gtest/gtest.h>

#include "serving/run_config.h"
#include "sim/simulator.h"
#include "tests/sim/sim_testing.h"
#include "traces/synthetic.h"

namespace twinfer {
namespace {

constexpr double kServiceMeanUs = 20000;  // 20 ms
constexpr double kLoad = 0.7;
constexpr std::int64_t kRequests = 1000000;

nlohmann::json single_server_fifo() {
  testing::register_test_cost_model();
  auto c = testing::small_config(1);
  c["policies"]["batcher"] = {{"name", "request_level"}, {"max_batch_size", 1}, {"max_queue_delay_us", 0}};
  c["policies"]["cost_model"] = "test_token_us";
  c["cluster"]["models"]["m"]["max_context"] = 1 << 30;  // input tokens stand for service microseconds
  return c;
}

nlohmann::json poisson_spec(const std::string& service_kind) {
  return {{"requests", kRequests},
          {"rate_rps", kLoad / (kServiceMeanUs * 1e-6)},
          {"arrival", "poisson"},
          {"input", {{"kind", service_kind}, {"mean", kServiceMeanUs}, {"min", 1}, {"max", 1 << 30}}},
          {"output", {{"kind", "constant"}, {"mean", 1}}}};
}

nlohmann::json run(const std::string& service_kind) {
  RunConfig config = parse_run_config(single_server_fifo(), "");
  Trace t = generate_synthetic(parse_synthetic_spec(poisson_spec(service_kind), "test"), 42);
  return sim::simulate(config, t, sim::SimRunOptions{});
}

TEST(Queueing, MD1MeanWaitWithinThreePercent) {
  auto s = run("constant");
  ASSERT_EQ(s["requests"]["completed"], kRequests);
  // Pollaczek-Khinchine with deterministic service: Wq = rho * D / (2 (1 - rho)).
  double expected_ms = kLoad * (kServiceMeanUs / 1000) / (2 * (1 - kLoad));
  EXPECT_NEAR(s["queue_ms"]["mean"].get<double>(), expected_ms, 0.03 * expected_ms);
  EXPECT_NEAR(s["latency_ms"]["mean"].get<double>(), expected_ms + 20, 0.03 * (expected_ms + 20));
  EXPECT_NEAR(s["workers"][0]["utilization"].get<double>(), kLoad, 0.01);
}

TEST(Queueing, MM1MeanWaitWithinThreePercent) {
  auto s = run("exponential");
  ASSERT_EQ(s["requests"]["completed"], kRequests);
  // Wq = rho * E[S] / (1 - rho).
  double expected_ms = kLoad * (kServiceMeanUs / 1000) / (1 - kLoad);
  EXPECT_NEAR(s["queue_ms"]["mean"].get<double>(), expected_ms, 0.03 * expected_ms);
  EXPECT_NEAR(s["workers"][0]["utilization"].get<double>(), kLoad, 0.01);
}

}  // namespace
}  // namespace twinfer
