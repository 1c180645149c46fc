// The twin principle for the step log: `twinfer sim` and `twinfer run` log the same steps, shape for
// shape, on a trace whose requests arrive one at a time (so that no timing decides what batches
// together), and `twinfer calibrate` fits the real run's log.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/runtime/process_testing.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

// Each worker's steps as "kind,sequences,prefill_seqs,...": every column but the times.
std::map<std::string, std::vector<std::string>> shapes_in(const std::string& path) {
  std::istringstream in(testing::slurp(path));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("worker,start_us,duration_us,engine_us,kind,", 0), 0u) << line;
  std::map<std::string, std::vector<std::string>> out;
  while (std::getline(in, line)) {
    const auto f = testing::csv_fields(line);
    std::string shape;
    for (std::size_t i = 4; i < f.size(); ++i) shape += f[i] + ",";
    out[f.at(0)].push_back(shape);
  }
  return out;
}

TEST(StepLogTwin, SimAndRunLogTheSameStepsAndCalibrateFitsTheRealOne) {
  const std::string dir = ::testing::TempDir() + "/step_log_twin_" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0755);
  testing::Children children(dir);
  // Three requests 0.4 s apart, each done long before the next; one needs two prefill chunks.
  std::ofstream(dir + "/trace.csv") << "arrival_s,input_tokens,output_tokens\n0,40,12\n0.4,700,5\n0.8,9,20\n";
  const std::string config = std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json";
  const std::vector<std::string> common = {"--config", config, "--trace", dir + "/trace.csv", "--set",
                                           "sim.step_log=true", "--set", "sim.network=none"};
  auto with = [&](std::vector<std::string> head, const std::string& out) {
    head.insert(head.end(), common.begin(), common.end());
    head.push_back("--out");
    head.push_back(out);
    return head;
  };
  ASSERT_EQ(children.run(with({"sim"}, dir + "/sim"), "sim.log", 60), 0) << children.log("sim.log");
  ASSERT_EQ(children.run(with({"run"}, dir + "/run"), "run.log", 120), 0) << children.log("run.log");
  const auto sim = shapes_in(dir + "/sim/steps.csv");
  const auto real = shapes_in(dir + "/run/steps.csv");
  EXPECT_EQ(sim, real);
  std::size_t steps = 0;
  for (const auto& [worker, shapes] : real) steps += shapes.size();
  EXPECT_EQ(steps, 1u + 11 + 2 + 4 + 1 + 19);  // prefills (700 tokens in two chunks of 512) and decodes

  ASSERT_EQ(children.run({"calibrate", "--config", config, "--steps", dir + "/run", "--out", dir + "/cost.json",
                          "--holdout-every", "0"},
                         "calibrate.log", 60),
            0)
      << children.log("calibrate.log");
  const auto cost = nlohmann::json::parse(testing::slurp(dir + "/cost.json"));
  EXPECT_EQ(cost["format"], "twinfer-cost-v1");
  EXPECT_EQ(cost["entries"][0]["fit"]["train"]["steps"], steps);
  // A folder without a step log is an error naming the file.
  ASSERT_NE(children.run({"calibrate", "--config", config, "--steps", dir, "--out", dir + "/x.json"}, "bad.log", 60), 0);
  EXPECT_NE(children.log("bad.log").find(dir + "/steps.csv"), std::string::npos) << children.log("bad.log");
}

}  // namespace
}  // namespace twinfer
