// Traffic splits and elastic pools through `twinfer serve --spawn-workers` under `twinfer replay`:
// real worker processes started when a pool scales up (a process start and a model load) and
// stopped once drained, on synthetic traces written by the test. The same configs run through
// the embedded runtime in embedded_elastic_test.cc.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/runtime/net_testing.h"
#include "tests/runtime/process_testing.h"
#include "tests/runtime/runtime_testing.h"
#include "tests/testing.h"
#include "traces/trace.h"

namespace twinfer {
namespace {

using testing::Children;

constexpr TimeUs kS = 1'000'000;

std::string config_path(const std::string& name) { return std::string(TWINFER_SOURCE_DIR) + "/configs/" + name; }

struct Ended {
  TimeUs arrival_us = 0;
  std::string worker;
  std::string outcome;
  std::string reason;
};

class RpcElasticProcesses : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/rpc_elastic_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ::mkdir(dir_.c_str(), 0755);
    children_ = std::make_unique<Children>(dir_);
  }

  // testing::phases() of one phase, for model family `model`, sessions spread over 97 keys.
  std::string steady_trace(double seconds, double rate, int output, const std::string& model) {
    Trace t = testing::phases({{seconds, rate}}, output, model);
    for (Request& r : t.requests) r.session = "s" + std::to_string(r.id % 97);
    const std::string path = dir_ + "/trace.csv";
    write_trace(t, path);
    return path;
  }

  // Serves `config` with spawned workers and replays `trace` through it; every request's end, by id.
  std::map<RequestId, Ended> serve_and_replay(const std::string& config, const std::string& trace) {
    const int port = testing::free_port();
    const pid_t serve = children_->spawn(
        {"serve", "--config", config, "--spawn-workers", "--listen", "127.0.0.1:" + std::to_string(port)}, "serve.log");
    EXPECT_TRUE(children_->wait_listening(serve, port, 120)) << children_->log("serve.log");
    const int rc = children_->run({"replay", "--trace", trace, "--target", "127.0.0.1:" + std::to_string(port),
                                   "--config", config, "--out", dir_ + "/out", "--timeout-s", "120"},
                                  "replay.log", 200);
    EXPECT_EQ(rc, 0) << children_->log("replay.log") << children_->log("serve.log");
    ::kill(serve, SIGTERM);
    EXPECT_EQ(children_->wait_exit(serve, 60), 0) << children_->log("serve.log");
    std::map<RequestId, Ended> out;
    std::istringstream csv(testing::slurp(dir_ + "/out/requests.csv"));
    std::string line;
    std::getline(csv, line);  // id,arrival_us,worker,start_us,first_token_us,end_us,outcome,reason,...
    while (std::getline(csv, line)) {
      const std::vector<std::string> f = testing::csv_fields(line);
      Ended e;
      e.arrival_us = std::stoll(f[1]);
      e.worker = f[2];
      e.outcome = f[6];
      e.reason = f[7];
      out[std::stoull(f[0])] = e;
    }
    return out;
  }

  std::string serve_log() { return children_->log("serve.log"); }

  std::string dir_;
  std::unique_ptr<Children> children_;
};

// configs/cpu_canary.json: tiny-v1 (cpu/cpu0) gets everything until 1 s, then 10 %, 50 % from 2 s,
// nothing from 3 s; tiny-v2 (cpu/cpu1) the rest. The schedule runs on the replay's clock.
TEST_F(RpcElasticProcesses, ACanaryScheduleMovesTrafficToTheNewVersionOnTheReplaysClock) {
  const auto ended = serve_and_replay(config_path("cpu_canary.json"), steady_trace(4, 25, 8, "tiny"));
  ASSERT_EQ(ended.size(), 100u);
  std::map<int, std::map<std::string, int>> per_second;
  for (const auto& [id, e] : ended) {
    EXPECT_EQ(e.outcome, "completed") << "request " << id << ": " << e.reason;
    per_second[int(e.arrival_us / kS)][e.worker]++;
  }
  EXPECT_EQ(per_second[0]["cpu/cpu1"], 0);
  EXPECT_EQ(per_second[0]["cpu/cpu0"], 25);
  EXPECT_GT(per_second[2]["cpu/cpu0"], 0);
  EXPECT_GT(per_second[2]["cpu/cpu1"], 0);
  EXPECT_LT(per_second[1]["cpu/cpu1"], per_second[2]["cpu/cpu1"]);
  EXPECT_EQ(per_second[3]["cpu/cpu0"], 0);
  EXPECT_EQ(per_second[3]["cpu/cpu1"], 25);
}

// configs/cpu_hot_swap.json: tiny-v1 (workers 0 and 1) serves until 2 s, then tiny-v2 (workers 2
// and 3), whose processes do not run at the start. Its pool starts both a decision and a cold start
// ahead of the switch; tiny-v1's processes stop once drained. Nothing fails on the way.
TEST_F(RpcElasticProcesses, AHotSwapStartsTheNewVersionsProcessesAndStopsTheOldOnesWithoutAFailure) {
  const auto ended = serve_and_replay(config_path("cpu_hot_swap.json"), steady_trace(4, 25, 8, "tiny"));
  ASSERT_EQ(ended.size(), 100u);
  const std::string log = serve_log();
  for (int w = 2; w < 4; ++w) {
    EXPECT_NE(log.find("started worker " + std::to_string(w) + " (pid"), std::string::npos) << log;
    EXPECT_NE(log.find(": its pool scaled up"), std::string::npos) << log;
  }
  for (int w = 0; w < 2; ++w) {
    EXPECT_NE(log.find("stopping worker " + std::to_string(w) + " (pid"), std::string::npos) << log;
  }
  // Before the switch everything goes to tiny-v1. After it, tiny-v1 serves until a tiny-v2 process
  // is ready (a process start and a model load: how long depends on the machine's load), and from
  // the first request tiny-v2 serves on, every later one goes to tiny-v2.
  const auto on_v2 = [](const std::string& worker) { return worker == "cpu/cpu2" || worker == "cpu/cpu3"; };
  TimeUs first_on_v2 = kNever;
  for (const auto& [id, e] : ended) {
    EXPECT_EQ(e.outcome, "completed") << "request " << id << ": " << e.reason;
    if (e.arrival_us < 2 * kS) {
      EXPECT_TRUE(e.worker == "cpu/cpu0" || e.worker == "cpu/cpu1") << id;
    }
    if (on_v2(e.worker)) first_on_v2 = std::min(first_on_v2, e.arrival_us);
  }
  ASSERT_NE(first_on_v2, kNever) << "tiny-v2 served nothing";
  EXPECT_GE(first_on_v2, 2 * kS);
  int after = 0;
  for (const auto& [id, e] : ended) {
    if (e.arrival_us <= first_on_v2) continue;
    EXPECT_TRUE(on_v2(e.worker)) << "request " << id << " arrived after tiny-v2 served, on " << e.worker;
    ++after;
  }
  EXPECT_GT(after, 0);
}

// configs/cpu_elastic.json: one replica at first, up to three. A load step makes the pool start
// worker processes, and the quiet tail stops them again; no request is lost.
TEST_F(RpcElasticProcesses, ALoadStepStartsWorkerProcessesAndTheQuietAfterItStopsThem) {
  // As the embedded runtime's test: 1 s quiet, a 1 s burst, 6 s quiet; 64 tokens per answer keep
  // more than 2 requests per replica outstanding in the burst even on a fast machine.
  const Trace t = testing::phases({{1, 5}, {1, 100}, {6, 5}}, 64);
  const std::string trace = dir_ + "/step.csv";
  write_trace(t, trace);
  const auto ended = serve_and_replay(config_path("cpu_elastic.json"), trace);
  ASSERT_EQ(ended.size(), t.requests.size());
  std::map<std::string, int> per_worker;
  for (const auto& [id, e] : ended) {
    EXPECT_EQ(e.outcome, "completed") << "request " << id << ": " << e.reason;
    per_worker[e.worker]++;
  }
  const std::string log = serve_log();
  EXPECT_NE(log.find(": its pool scaled up"), std::string::npos) << log;
  EXPECT_NE(log.find(": drained"), std::string::npos) << log;
  EXPECT_GE(per_worker.size(), 2u) << "the started workers served nothing";
}

}  // namespace
}  // namespace twinfer
