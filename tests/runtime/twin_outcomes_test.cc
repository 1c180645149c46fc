// The twin principle on real data: for one config, trace and seed, the simulator (`twinfer sim`),
// the embedded runtime (`twinfer run`) and the gRPC runtime (`twinfer serve --spawn-workers` under
// `twinfer replay`) end every request the same way, with the same reason. The trace is the first
// 40 requests of the Azure conversation trace, unchanged: two of them (ids 23 and 30) need more
// than the tiny model's 4,096 tokens of context. Skipped where ../shared/traces is absent.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <set>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "traces/trace.h"
#include "tests/runtime/net_testing.h"
#include "tests/runtime/process_testing.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::Children;

const std::string kConfig = std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny3.json";
const std::string kConvTrace = std::string(TWINFER_SHARED_TRACES_DIR) + "/azure_llm_2023/AzureLLMInferenceTrace_conv.csv";

using Outcomes = std::map<int, std::pair<std::string, std::string>>;  // id -> (outcome, reason)

// requests.csv of `dir`: each request's outcome and reason.
Outcomes outcomes_in(const std::string& dir) {
  std::istringstream in(testing::slurp(dir + "/requests.csv"));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line.rfind("id,arrival_us,worker,start_us,first_token_us,end_us,outcome,reason,", 0), 0u) << line;
  Outcomes out;
  while (std::getline(in, line)) {
    const std::vector<std::string> f = testing::csv_fields(line);
    out[std::stoi(f.at(0))] = {f.at(6), f.at(7)};
  }
  return out;
}

class TwinOutcomes : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kConvTrace.c_str(), R_OK) != 0) {
      GTEST_SKIP() << "the Azure conversation trace is absent (" << kConvTrace << ")";
    }
    dir_ = ::testing::TempDir() + "/twin_outcomes_" + std::to_string(::getpid());
    ::mkdir(dir_.c_str(), 0755);
    children_ = std::make_unique<Children>(dir_);
    Trace full = read_trace(kConvTrace);
    Trace slice;
    slice.requests.assign(full.requests.begin(), full.requests.begin() + 40);
    trace_ = dir_ + "/conv40.csv";
    write_trace(slice, trace_);
  }

  // `twinfer <command>` on the slice at `rate_scale` times its rate (with `more` arguments); its
  // outcomes.
  Outcomes run_command(const std::string& command, const std::vector<std::string>& more = {},
                       const std::string& rate_scale = "2") {
    const std::string out = dir_ + "/" + command;
    std::vector<std::string> args = {command, "--config", kConfig,         "--trace", trace_, "--out",
                                     out,     "--rate-scale", rate_scale, "--seed",  "1"};
    args.insert(args.end(), more.begin(), more.end());
    const int rc = children_->run(args, command + ".log", 300);
    EXPECT_EQ(rc, 0) << children_->log(command + ".log");
    return outcomes_in(out);
  }

  Outcomes serve_and_replay() {
    const int port = testing::free_port();
    const pid_t serve = children_->spawn({"serve", "--config", kConfig, "--spawn-workers", "--listen",
                                          "127.0.0.1:" + std::to_string(port), "--seed", "1"},
                                         "serve.log");
    EXPECT_TRUE(children_->wait_listening(serve, port, 120)) << children_->log("serve.log");
    const std::string out = dir_ + "/replay";
    const int rc = children_->run({"replay", "--trace", trace_, "--target", "127.0.0.1:" + std::to_string(port),
                                   "--config", kConfig, "--out", out, "--rate-scale", "2", "--timeout-s", "240"},
                                  "replay.log", 300);
    EXPECT_EQ(rc, 0) << children_->log("replay.log") << children_->log("serve.log");
    return outcomes_in(out);
  }

  std::string dir_;
  std::string trace_;
  std::unique_ptr<Children> children_;
};

TEST_F(TwinOutcomes, SimRunAndServeRejectTheSameRequestsForTheSameReasonAndCompleteTheRest) {
  const Outcomes simulated = run_command("sim");
  ASSERT_EQ(simulated.size(), 40u);
  for (const auto& [id, ended] : simulated) {
    if (id == 23 || id == 30) {
      EXPECT_EQ(ended.first, "rejected") << "request " << id;
      EXPECT_EQ(ended.second.rfind("needs 41", 0), 0u) << ended.second;
      EXPECT_NE(ended.second.find("tokens of context (input + output); the longest context of any model is 4096 "
                                  "(max_context)"),
                std::string::npos)
          << ended.second;
    } else {
      EXPECT_EQ(ended.first, "completed") << "request " << id << ": " << ended.second;
    }
  }
  const Outcomes embedded = run_command("run");
  EXPECT_EQ(embedded, simulated);
  const Outcomes served = serve_and_replay();
  EXPECT_EQ(served, simulated);
}

// Worker 1 crashes 9 s into the replay, while it serves request 24 (from 8.7 s), and
// recovers a second later: its requests are retried on the others, in the simulator and for real,
// and every request ends as it does without the fault.
TEST_F(TwinOutcomes, ACrashWithRetriesLosesNothingInTheSimulatorOrTheRuntime) {
  const std::string scenario = dir_ + "/crash.json";
  std::ofstream(scenario) << R"({"faults": [{"at_s": 9.0, "type": "crash", "worker": 1, "recover_after_s": 1}]})";
  const Outcomes simulated = run_command("sim", {"--faults", scenario});
  ASSERT_EQ(simulated.size(), 40u);
  int completed = 0;
  for (const auto& [id, ended] : simulated) completed += ended.first == "completed";
  EXPECT_EQ(completed, 38);
  const nlohmann::json summary = nlohmann::json::parse(testing::slurp(dir_ + "/sim/summary.json"));
  EXPECT_GE(summary["requests"]["retried"].get<int>(), 1) << "the crash found worker 1 idle";
  EXPECT_EQ(run_command("run", {"--faults", scenario}), simulated);
}

// A crash without retries, at eight times the trace's rate so that worker 1 is busy when it dies
// (1.2 s in): the requests on it end dropped, in the simulator and for real, with one reason worded
// the same way by both. Which requests were on it depends on each run's timing (the cost model's
// error), so only the reasons are compared.
TEST_F(TwinOutcomes, ACrashWithoutRetriesDropsWithTheSameReasonInTheSimulatorAndTheRuntime) {
  const std::string scenario = dir_ + "/crash.json";
  std::ofstream(scenario) << R"({"faults": [{"at_s": 1.2, "type": "crash", "worker": 1, "recover_after_s": 1}]})";
  const std::vector<std::string> no_retries = {"--faults", scenario, "--set", "protection.retry.max_attempts=1"};
  for (const char* command : {"sim", "run"}) {
    SCOPED_TRACE(command);
    std::set<std::string> dropped_reasons;
    for (const auto& [id, ended] : run_command(command, no_retries, "8")) {
      if (ended.first == "dropped") {
        dropped_reasons.insert(ended.second);
      } else if (id != 23 && id != 30) {
        EXPECT_EQ(ended.first, "completed") << "request " << id << ": " << ended.second;
      }
    }
    EXPECT_EQ(dropped_reasons, std::set<std::string>{"worker cpu/cpu1 crashed; gave up after 1 attempt"});
  }
}

}  // namespace
}  // namespace twinfer
