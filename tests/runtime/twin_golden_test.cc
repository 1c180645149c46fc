// Golden scenarios across engines, in the spirit of SimGrid's .tesh files: each folder under
// tests/twin/golden/ holds a config, a trace, a fault scenario (faults.json, optional) and
// expected.txt, one line per request: "<id> <outcome> <reason>". The simulator, the embedded
// runtime (`twinfer run`) and the gRPC runtime (`twinfer serve --spawn-workers` under `twinfer
// replay`, faults timed from the first request) must each end every request as written there:
// times aside, the twin and the real thing agree on what happened to every request and why.
// After an intended change, regenerate expected.txt from the simulator with
//   TWINFER_UPDATE_GOLDEN=1 build/bin/runtime_tests --gtest_filter='TwinGolden*'
// and explain the difference in the commit message.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/runtime/net_testing.h"
#include "tests/runtime/process_testing.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::Children;

const std::string kGolden = std::string(TWINFER_SOURCE_DIR) + "/tests/twin/golden/";

// requests.csv as expected.txt's lines, in id order.
std::string outcomes_of(const std::string& requests_csv) {
  std::istringstream csv(testing::slurp(requests_csv));
  std::string line;
  std::getline(csv, line);  // id,arrival_us,worker,start_us,first_token_us,end_us,outcome,reason,...
  std::map<long, std::string> rows;
  while (std::getline(csv, line)) {
    const std::vector<std::string> f = testing::csv_fields(line);
    if (f.size() < 8) continue;
    rows[std::stol(f[0])] = f[0] + " " + f[6] + (f[7].empty() ? "" : " " + f[7]);
  }
  std::string out;
  for (const auto& [id, row] : rows) out += row + "\n";
  return out;
}

class TwinGolden : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    scenario_ = kGolden + GetParam() + "/";
    dir_ = ::testing::TempDir() + "/twin_golden_" + std::to_string(::getpid()) + "_" + GetParam();
    ::mkdir(dir_.c_str(), 0755);
    children_ = std::make_unique<Children>(dir_);
    if (::access((scenario_ + "faults.json").c_str(), R_OK) == 0) faults_ = scenario_ + "faults.json";
  }

  std::string engine(const std::string& command) {
    const std::string out = dir_ + "/" + command;
    std::vector<std::string> args = {command, "--config", scenario_ + "config.json", "--trace", scenario_ + "trace.csv",
                                     "--out", out, "--seed", "1", "--no-progress"};
    if (!faults_.empty()) {
      args.push_back("--faults");
      args.push_back(faults_);
    }
    const int rc = children_->run(args, command + ".log", 300);
    EXPECT_EQ(rc, 0) << children_->log(command + ".log");
    return outcomes_of(out + "/requests.csv");
  }

  std::string served() {
    const int port = testing::free_port();
    std::vector<std::string> args = {"serve", "--config", scenario_ + "config.json", "--spawn-workers", "--listen",
                                     "127.0.0.1:" + std::to_string(port), "--seed", "1"};
    if (!faults_.empty()) {
      args.insert(args.end(), {"--faults", faults_, "--faults-start", "first-request"});
    }
    const pid_t serve = children_->spawn(args, "serve.log");
    EXPECT_TRUE(children_->wait_listening(serve, port, 120)) << children_->log("serve.log");
    const std::string out = dir_ + "/replay";
    const int rc = children_->run({"replay", "--trace", scenario_ + "trace.csv", "--target",
                                   "127.0.0.1:" + std::to_string(port), "--config", scenario_ + "config.json", "--out",
                                   out, "--timeout-s", "120"},
                                  "replay.log", 200);
    EXPECT_EQ(rc, 0) << children_->log("replay.log") << children_->log("serve.log");
    return outcomes_of(out + "/requests.csv");
  }

  std::string scenario_;
  std::string dir_;
  std::string faults_;
  std::unique_ptr<Children> children_;
};

TEST_P(TwinGolden, EveryEngineEndsEveryRequestAsWritten) {
  const std::string simulated = engine("sim");
  ASSERT_FALSE(simulated.empty());
  if (std::getenv("TWINFER_UPDATE_GOLDEN")) {
    std::ofstream(scenario_ + "expected.txt") << simulated;
    GTEST_SKIP() << "updated " << scenario_ << "expected.txt";
  }
  const std::string expected = testing::slurp(scenario_ + "expected.txt");
  EXPECT_EQ(simulated, expected) << "twinfer sim";
  EXPECT_EQ(engine("run"), expected) << "twinfer run\n" << children_->log("run.log");
  EXPECT_EQ(served(), expected) << "twinfer serve + replay\n" << children_->log("serve.log");
}

INSTANTIATE_TEST_SUITE_P(Scenarios, TwinGolden,
                         ::testing::Values("crash_with_retries", "partition", "router_restart", "hot_swap", "device_error"));

}  // namespace
}  // namespace twinfer
