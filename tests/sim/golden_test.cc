// Golden scenarios: small seeded runs whose complete outputs are checked in, so that any change
// in what the simulator predicts is seen in review. Each folder under tests/sim/golden/ holds
// config.json, trace.csv, and the expected summary.json (without its wall-clock "sim" key) and
// requests.csv. After an intended change of the model, regenerate them with
//   TWINFER_UPDATE_GOLDEN=1 build/bin/sim_tests --gtest_filter='*Golden*'
// and explain the difference in the commit message.
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "serving/run_config.h"
#include "sim/simulator.h"
#include "tests/sim/sim_testing.h"
#include "traces/trace.h"

namespace twinfer {
namespace {

const std::string kGolden = std::string(TWINFER_SOURCE_DIR) + "/tests/sim/golden/";

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, OutputsMatchTheCheckedInOnes) {
  const std::string dir = kGolden + GetParam();
  RunConfig config = load_run_config(dir + "/config.json");
  Trace trace = read_trace(dir + "/trace.csv");
  sim::SimRunOptions opt;
  opt.seed = 7;
  opt.out_dir = ::testing::TempDir() + "/golden_" + GetParam();
  nlohmann::json summary = sim::simulate(config, trace, opt);
  summary.erase("sim");
  const std::string got_summary = summary.dump(2) + "\n";
  const std::string got_requests = testing::slurp(opt.out_dir + "/requests.csv");
  if (std::getenv("TWINFER_UPDATE_GOLDEN")) {
    std::ofstream(dir + "/expected_summary.json") << got_summary;
    std::ofstream(dir + "/expected_requests.csv") << got_requests;
    GTEST_SKIP() << "updated the golden files of " << GetParam();
  }
  EXPECT_EQ(got_summary, testing::slurp(dir + "/expected_summary.json")) << "summary of " << GetParam();
  EXPECT_EQ(got_requests, testing::slurp(dir + "/expected_requests.csv")) << "requests.csv of " << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Scenarios, GoldenTest,
                         ::testing::Values("continuous_two_workers", "request_level_buckets", "kv_pressure_deadlines"));

}  // namespace
}  // namespace twinfer
