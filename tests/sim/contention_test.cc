// A calibrated cost model's contention: the instances of one host slow each other's steps in the
// simulator while they are busy together, and only then.
#include <fstream>

#include <gtest/gtest.h>

#include "policies/cost/calibrated_cost_model.h"
#include "serving/run_config.h"
#include "sim/simulator.h"
#include "tests/sim/sim_testing.h"

namespace twinfer {
namespace {

// Two instances on host "h"; a third alone on host "g".
nlohmann::json config_with_contention(double contention) {
  auto c = testing::small_config(2);
  c["cluster"]["hosts"].push_back({{"name", "g"}, {"device", "H100"}, {"gpus", 1},
                                   {"instances", {{{"model", "m"}, {"tp", 1}, {"count", 1}}}}});
  StepCoefficients k;
  k.step_s = 1e-3;
  k.linear_s_per_flop = 1e-14;
  k.contention = contention;
  nlohmann::json table = {{"format", "twinfer-cost-v1"},
                          {"entries", {{{"device", "H100"}, {"model", "m"}, {"tp", 1}, {"coefficients", coefficients_json(k)}}}}};
  const std::string path = ::testing::TempDir() + "/contention_" + std::to_string(int(contention * 100)) + ".json";
  std::ofstream(path) << table.dump();
  c["policies"]["cost_model"] = {{"name", "calibrated"}, {"path", path}};
  return c;
}

// Each request's latency (ms) when one request per worker arrives at `at_s` (round robin: h/0,
// h/1, g/0 in turn).
std::vector<double> latencies(double contention, const std::vector<double>& at_s) {
  RunConfig config = parse_run_config(config_with_contention(contention), "");
  Trace t;
  for (std::size_t i = 0; i < at_s.size(); ++i) {
    Request r;
    r.id = i;
    r.arrival_us = static_cast<TimeUs>(at_s[i] * 1e6);
    r.input_tokens = 100;
    r.output_tokens = 20;
    t.requests.push_back(r);
  }
  sim::SimRunOptions opt;
  opt.out_dir = ::testing::TempDir() + "/contention_run";
  sim::simulate(config, t, opt);
  std::ifstream in(opt.out_dir + "/requests.csv");
  std::string line;
  std::getline(in, line);
  std::vector<double> out;
  while (std::getline(in, line)) {
    const auto f = testing::csv_fields(line);
    out.push_back(double(std::stoll(f.at(5)) - std::stoll(f.at(1))) / 1e3);
  }
  return out;
}

TEST(Contention, SlowsTheStepsOfInstancesBusyOnOneHostAndNoOthers) {
  // All three at once: h/0 and h/1 slow each other (both busy), g/0 is alone on its host.
  const auto none = latencies(0, {0, 0, 0});
  const auto half = latencies(0.5, {0, 0, 0});
  ASSERT_EQ(none.size(), 3u);
  // h/0 starts its first step (the 3 ms prefill of 22 ms in all) before h/1 is busy: only the
  // rest is slowed. h/1 starts beside a busy h/0: all of it is.
  EXPECT_NEAR(half[0] / none[0], (3 + 19 * 1.02 * 1.5) / (3 + 19 * 1.02), 0.02);
  EXPECT_NEAR(half[1] / none[1], 1.5, 0.02);
  EXPECT_DOUBLE_EQ(half[2], none[2]);
  // One at a time: nobody shares.
  const auto apart = latencies(0.5, {0, 1, 2});
  const auto apart_none = latencies(0, {0, 1, 2});
  EXPECT_EQ(apart, apart_none);
}

}  // namespace
}  // namespace twinfer
