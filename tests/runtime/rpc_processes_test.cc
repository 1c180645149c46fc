// The gRPC transport as separate processes: build/bin/twinfer worker x3, serve and replay on
// loopback, on a slice of the Azure conversation trace. Every child is killed and reaped at the
// end of its test, whatever happens.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "traces/trace.h"
#include "tests/runtime/net_testing.h"
#include "tests/runtime/process_testing.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::free_port;
using testing::accepts;
using testing::http_get;
using testing::csv_fields;
using testing::Children;

using Clock = std::chrono::steady_clock;

const std::string kConfig = std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json";
const std::string kConvTrace = std::string(TWINFER_SHARED_TRACES_DIR) + "/azure_llm_2023/AzureLLMInferenceTrace_conv.csv";
const std::vector<std::string> kThreeWorkers = {"--set", "cluster.hosts.0.gpus=3", "--set",
                                                "cluster.hosts.0.instances.0.count=3"};

class RpcProcesses : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(kConvTrace.c_str(), R_OK) != 0) {
      GTEST_SKIP() << "the Azure conversation trace is absent (" << kConvTrace << "); skipping the multi-process tests";
    }
    dir_ = ::testing::TempDir() + "/rpc_processes_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ::mkdir(dir_.c_str(), 0755);
    children_ = std::make_unique<Children>(dir_);
  }

  // The first 60 requests of the conversation trace, prompts capped at 512 tokens and outputs at
  // `max_output` so that the tiny CPU model serves them in seconds on a small machine.
  std::string trace_slice(int max_output) {
    Trace full = read_trace(kConvTrace);
    Trace slice;
    slice.requests.assign(full.requests.begin(), full.requests.begin() + 60);
    for (auto& r : slice.requests) {
      r.input_tokens = std::min(r.input_tokens, 512);
      r.output_tokens = std::min(r.output_tokens, max_output);
    }
    const std::string path = dir_ + "/conv60.csv";
    write_trace(slice, path);
    return path;
  }

  // Three workers and a router (with `serve_args` more); returns the router's port.
  int start_cluster(const std::vector<std::string>& serve_args = {}) {
    std::string addresses;
    for (int i = 0; i < 3; ++i) {
      worker_ports_.push_back(free_port());
      std::vector<std::string> args = {"worker", "--config", kConfig, "--id", std::to_string(i), "--listen",
                                       "127.0.0.1:" + std::to_string(worker_ports_.back())};
      args.insert(args.end(), kThreeWorkers.begin(), kThreeWorkers.end());
      workers_.push_back(children_->spawn(args, "worker" + std::to_string(i) + ".log"));
      addresses += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(worker_ports_.back());
    }
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(children_->wait_listening(workers_[i], worker_ports_[i], 60))
          << children_->log("worker" + std::to_string(i) + ".log");
    }
    const int port = free_port();
    metrics_port_ = free_port();
    std::vector<std::string> args = {"serve", "--config", kConfig, "--workers", addresses, "--listen",
                                     "127.0.0.1:" + std::to_string(port), "--metrics-port",
                                     std::to_string(metrics_port_)};
    args.insert(args.end(), kThreeWorkers.begin(), kThreeWorkers.end());
    args.insert(args.end(), serve_args.begin(), serve_args.end());
    serve_ = children_->spawn(args, "serve.log");
    EXPECT_TRUE(children_->wait_listening(serve_, port, 60)) << children_->log("serve.log");
    return port;
  }

  pid_t start_replay(const std::string& trace, int port, double rate_scale) {
    std::vector<std::string> args = {"replay", "--trace", trace, "--target", "127.0.0.1:" + std::to_string(port),
                                     "--out", dir_ + "/out", "--config", kConfig, "--rate-scale",
                                     std::to_string(rate_scale), "--timeout-s", "120"};
    args.insert(args.end(), kThreeWorkers.begin(), kThreeWorkers.end());
    return children_->spawn(args, "replay.log");
  }

  nlohmann::json summary() { return nlohmann::json::parse(testing::slurp(dir_ + "/out/summary.json")); }

  // requests.csv rows without the header.
  std::vector<std::vector<std::string>> rows() {
    std::istringstream in(testing::slurp(dir_ + "/out/requests.csv"));
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line.rfind("id,arrival_us,worker,start_us,first_token_us,end_us,outcome,reason,", 0), 0u) << line;
    std::vector<std::vector<std::string>> out;
    while (std::getline(in, line)) out.push_back(csv_fields(line));
    return out;
  }

  std::string dir_;
  std::unique_ptr<Children> children_;
  std::vector<int> worker_ports_;
  std::vector<pid_t> workers_;
  pid_t serve_ = -1;
  int metrics_port_ = 0;
};

TEST_F(RpcProcesses, ReplayThroughServeConservesEveryRequestAndSigtermStopsCleanly) {
  const std::string trace = trace_slice(32);
  const int port = start_cluster();
  ASSERT_FALSE(HasFailure());
  const auto began = Clock::now();
  pid_t replay = start_replay(trace, port, 10);  // 30 s of trace in about 3 s
  ASSERT_EQ(children_->wait_exit(replay, 180), 0) << children_->log("replay.log");
  const double replay_s = std::chrono::duration<double>(Clock::now() - began).count();
  std::cerr << "[ info     ] replay of 60 requests took " << replay_s << " s\n";

  nlohmann::json s = summary();
  const auto& q = s["requests"];
  EXPECT_EQ(q["total"], 60);
  EXPECT_EQ(q["completed"].get<int>() + q["rejected"].get<int>() + q["dropped"].get<int>(), 60);
  EXPECT_EQ(q["completed"], 60) << s.dump(2);
  ASSERT_EQ(s["workers"].size(), 3u);
  for (const auto& w : s["workers"]) EXPECT_GT(w["completed"].get<int>(), 0) << w.dump();
  EXPECT_GT(s["latency_ms"]["p50"].get<double>(), 0);
  auto r = rows();
  ASSERT_EQ(r.size(), 60u);
  for (std::size_t i = 0; i < r.size(); ++i) EXPECT_EQ(r[i][0], std::to_string(i));
  EXPECT_NE(children_->log("replay.log").find("requests: 60 total, 60 completed"), std::string::npos)
      << children_->log("replay.log");

  // SIGTERM: every process finishes and exits 0.
  ::kill(serve_, SIGTERM);
  EXPECT_EQ(children_->wait_exit(serve_, 30), 0) << children_->log("serve.log");
  for (int i = 0; i < 3; ++i) {
    ::kill(workers_[i], SIGTERM);
    EXPECT_EQ(children_->wait_exit(workers_[i], 30), 0) << children_->log("worker" + std::to_string(i) + ".log");
  }
  EXPECT_NE(children_->log("worker0.log").find("stopped"), std::string::npos);
}

TEST_F(RpcProcesses, WithoutRetriesAKilledWorkersRequestsEndAsDroppedAndLaterOnesGoToTheOthers) {
  const std::string trace = trace_slice(64);
  const int port = start_cluster({"--set", "protection.retry.max_attempts=1"});
  ASSERT_FALSE(HasFailure());
  const auto began = Clock::now();
  pid_t replay = start_replay(trace, port, 10);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  // Killed while the router has requests in flight to it (its gauge, polled), not at a fixed
  // moment that may fall between two of its requests.
  const std::string in_flight = "twinfer_worker_in_flight{worker=\"cpu/cpu1\"} ";
  const auto poll_until = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    const std::string metrics = http_get(metrics_port_, "/metrics");
    const auto at = metrics.find(in_flight);
    if (at != std::string::npos && std::atof(metrics.c_str() + at + in_flight.size()) >= 1) break;
    ASSERT_LT(Clock::now(), poll_until) << "worker 1 never had a request in flight";
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(workers_[1], SIGKILL);
  const double killed_s = std::chrono::duration<double>(Clock::now() - began).count();
  ASSERT_EQ(children_->wait_exit(replay, 180), 0) << children_->log("replay.log");

  nlohmann::json s = summary();
  const auto& q = s["requests"];
  EXPECT_EQ(q["total"], 60);
  EXPECT_EQ(q["completed"].get<int>() + q["rejected"].get<int>() + q["dropped"].get<int>(), 60);
  auto r = rows();
  ASSERT_EQ(r.size(), 60u);
  int dropped = 0, after_kill = 0;
  for (const auto& row : r) {
    const std::string& worker = row[2];
    const std::string& outcome = row[6];
    const std::string& reason = row[7];
    if (outcome == "dropped") {
      ++dropped;
      EXPECT_EQ(worker, "cpu/cpu1");
      EXPECT_EQ(reason.rfind("worker cpu/cpu1 unreachable: ", 0), 0u) << reason;
    } else {
      EXPECT_EQ(outcome, "completed") << reason;
    }
    // The replay's time zero is after `began`: arrivals a second past the kill came after it.
    if (std::stod(row[1]) * 1e-6 > killed_s + 1.0) {
      ++after_kill;
      EXPECT_EQ(outcome, "completed") << "request " << row[0];
      EXPECT_NE(worker, "cpu/cpu1") << "request " << row[0];
    }
  }
  EXPECT_EQ(q["dropped"], dropped);
  EXPECT_GE(dropped, 1) << "worker 1 had requests in flight when it was killed";
  EXPECT_GE(after_kill, 10);
  EXPECT_NE(children_->log("serve.log").find("-> down: "), std::string::npos) << children_->log("serve.log");

  const std::string metrics = http_get(metrics_port_, "/metrics");
  EXPECT_NE(metrics.find("twinfer_worker_up{worker=\"cpu/cpu1\"} 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("twinfer_worker_up{worker=\"cpu/cpu0\"} 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("twinfer_requests_total{outcome=\"dropped\"} " + std::to_string(dropped) + "\n"),
            std::string::npos)
      << metrics;
}

}  // namespace
}  // namespace twinfer
