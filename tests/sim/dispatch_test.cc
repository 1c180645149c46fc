// sim.dispatch_us: every request reaches its worker's queue that long after the router sent it.
#include <gtest/gtest.h>

#include "core/error.h"
#include "serving/run_config.h"
#include "sim/simulator.h"
#include "tests/sim/sim_testing.h"

namespace twinfer {
namespace {

nlohmann::json run_with(double dispatch_us) {
  auto c = testing::small_config(1);
  c["sim"]["dispatch_us"] = dispatch_us;
  RunConfig config = parse_run_config(c, "");
  Trace t;
  for (int i = 0; i < 3; ++i) {
    Request r;
    r.id = static_cast<RequestId>(i);
    r.arrival_us = TimeUs(i) * 1'000'000;  // one at a time
    r.input_tokens = 50;
    r.output_tokens = 5;
    t.requests.push_back(r);
  }
  return sim::simulate(config, t, sim::SimRunOptions{});
}

TEST(Dispatch, DelaysEveryRequestsStartByTheDispatchTime) {
  const auto none = run_with(0);
  const auto some = run_with(250);
  EXPECT_NEAR(some["latency_ms"]["mean"].get<double>() - none["latency_ms"]["mean"].get<double>(), 0.25, 1e-9);
  EXPECT_NEAR(some["ttft_ms"]["p50"].get<double>() - none["ttft_ms"]["p50"].get<double>(), 0.25, 1e-9);
}

TEST(Dispatch, ANegativeDispatchTimeIsRefusedByName) {
  auto c = testing::small_config(1);
  c["sim"]["dispatch_us"] = -1;
  const std::string e = testing::error_of([&] { parse_run_config(c, "c.json"); });
  EXPECT_NE(e.find("dispatch_us"), std::string::npos) << e;
}

}  // namespace
}  // namespace twinfer
