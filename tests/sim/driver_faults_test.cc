// Faults in the simulator, and the protection that answers them.
#include <unistd.h>

#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "serving/faults/fault_scenario.h"
#include "serving/run_config.h"
#include "sim/simulator.h"
#include "tests/sim/sim_testing.h"
#include "traces/trace.h"

namespace twinfer {
namespace {

using testing::slurp;

const std::string kSource = TWINFER_SOURCE_DIR;
const std::string kAzure = std::string(TWINFER_SHARED_TRACES_DIR) + "/azure_llm_2023/";

// One row of requests.csv.
struct Row {
  TimeUs arrival_us = 0, start_us = 0, end_us = 0;
  std::string worker, outcome, reason;
  int attempts = 0;
};

std::vector<Row> read_rows(const std::string& dir) {
  std::istringstream in(slurp(dir + "/requests.csv"));
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line,
            "id,arrival_us,worker,start_us,first_token_us,end_us,outcome,reason,input_tokens,output_tokens,priority,"
            "preemptions,attempts,cached_tokens");
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    auto f = testing::csv_fields(line);
    Row r;
    r.arrival_us = std::stoll(f[1]);
    r.worker = f[2];
    r.start_us = std::stoll(f[3]);
    r.end_us = std::stoll(f[5]);
    r.outcome = f[6];
    r.reason = f[7];
    r.attempts = std::stoi(f[12]);
    rows.push_back(r);
  }
  return rows;
}

// `n` requests every `gap_us`, each `input` prompt tokens and `output` generated ones.
Trace steady(int n, TimeUs gap_us, int input, int output) {
  Trace t;
  for (int i = 0; i < n; ++i) {
    Request r;
    r.id = RequestId(i);
    r.arrival_us = TimeUs(i) * gap_us;
    r.input_tokens = input;
    r.output_tokens = output;
    t.requests.push_back(r);
  }
  t.source = "steady";
  return t;
}

RunConfig config_of(int workers, const std::string& protection = "{}", const std::string& batcher = "") {
  auto c = testing::small_config(workers);
  if (!batcher.empty()) c["policies"]["batcher"] = nlohmann::json::parse(batcher);
  c["protection"] = nlohmann::json::parse(protection);
  return parse_run_config(c, "test");
}

FaultScenario faults_of(const RunConfig& c, const std::string& text) {
  return parse_fault_scenario(nlohmann::json::parse(text), "faults.json", c.cluster);
}

std::string out_dir(const std::string& name) {
  return ::testing::TempDir() + "/twinfer_faults_" + name + "_" + std::to_string(::getpid());
}

nlohmann::json run(const RunConfig& c, const Trace& t, const FaultScenario& f, const std::string& dir) {
  sim::SimRunOptions opt;
  opt.faults = f;
  opt.out_dir = dir;
  return sim::simulate(c, t, opt);
}

std::int64_t ended(const nlohmann::json& s) {
  const auto& q = s["requests"];
  return q["completed"].get<std::int64_t>() + q["rejected"].get<std::int64_t>() + q["dropped"].get<std::int64_t>() +
         q["timed_out"].get<std::int64_t>();
}

TEST(SimFaults, ACrashedWorkersRequestsAreRetriedElsewhereAndItRejoins) {
  RunConfig c = config_of(4, R"({"retry": {"budget_min_retries": 1000}})");
  Trace t = steady(2000, 10'000, 500, 50);  // 100 requests/s for 20 s
  std::string dir = out_dir("crash");
  auto s = run(c, t, faults_of(c, R"({"faults": [{"at_s": 8, "type": "crash", "worker": 1, "recover_after_s": 4}]})"),
               dir);
  EXPECT_EQ(s["requests"]["completed"], 2000);
  EXPECT_GT(s["requests"]["retried"].get<int>(), 0);
  int after_rejoin = 0;
  for (const Row& r : read_rows(dir)) {
    ASSERT_EQ(r.outcome, "completed");
    if (r.worker != "h/gpu1") continue;
    EXPECT_FALSE(r.start_us >= 8'000'000 && r.start_us < 12'000'000) << "started on the dead worker";
    after_rejoin += r.start_us >= 12'000'000;
  }
  EXPECT_GT(after_rejoin, 100);  // it takes its share again
  const auto& changes = s["faults"]["health_changes"];
  ASSERT_GE(changes.size(), 2u);
  EXPECT_EQ(changes[0]["worker"], "h/gpu1");
  EXPECT_EQ(changes[0]["to"], "down");
  EXPECT_DOUBLE_EQ(changes[0]["at_s"].get<double>(), 8.0);
  EXPECT_EQ(changes.back()["to"], "up");
  EXPECT_GE(changes.back()["at_s"].get<double>(), 12.0);
}

TEST(SimFaults, WithoutRetriesTheLostRequestsAreDroppedWithTheirReason) {
  RunConfig c = config_of(4, R"({"retry": {"max_attempts": 1}})");
  Trace t = steady(2000, 10'000, 500, 50);
  std::string dir = out_dir("crash_no_retry");
  auto s = run(c, t, faults_of(c, R"({"faults": [{"at_s": 8, "type": "crash", "worker": 1}]})"), dir);
  EXPECT_EQ(ended(s), 2000);
  const int dropped = s["requests"]["dropped"].get<int>();
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(s["requests"]["retried"], 0);
  for (const Row& r : read_rows(dir)) {
    if (r.outcome != "dropped") continue;
    EXPECT_EQ(r.worker, "h/gpu1");
    EXPECT_EQ(r.end_us, 8'000'000);
    EXPECT_EQ(r.reason.rfind("worker h/gpu1 crashed", 0), 0u) << r.reason;
  }
  EXPECT_EQ(s["reasons"]["dropped"].size(), 1u);
}

TEST(SimFaults, TheSameScenarioGivesTheSameBytes) {
  RunConfig c = config_of(4, R"({"retry": {"budget_min_retries": 1000}})");
  Trace t = steady(1000, 10'000, 500, 50);
  FaultScenario f = faults_of(c, R"({"faults": [
      {"at_s": 2, "type": "crash", "worker": 1, "recover_after_s": 3},
      {"at_s": 3, "type": "link", "worker": 2, "latency_ms": 5, "loss": 0.2, "duration_s": 4},
      {"at_s": 4, "type": "partition", "worker": 3, "duration_s": 2}]})");
  std::string a = out_dir("same_a"), b = out_dir("same_b");
  auto sa = run(c, t, f, a);
  auto sb = run(c, t, f, b);
  sa.erase("sim");
  sb.erase("sim");
  EXPECT_EQ(sa.dump(), sb.dump());
  EXPECT_EQ(slurp(a + "/requests.csv"), slurp(b + "/requests.csv"));
  EXPECT_EQ(ended(sa), 1000);
}

TEST(SimFaults, ASlowdownStretchesThatWorkersRequestsForItsDuration) {
  RunConfig c = config_of(1);
  Trace t = steady(40, 500'000, 200, 20);  // one at a time: latency is service time
  std::string base = out_dir("slow_base"), slow = out_dir("slow");
  run(c, t, {}, base);
  run(c, t, faults_of(c, R"({"faults": [{"at_s": 5, "type": "slowdown", "worker": 0, "factor": 3,
                                          "duration_s": 5}]})"),
      slow);
  auto rb = read_rows(base), rs = read_rows(slow);
  for (std::size_t i = 0; i < rb.size(); ++i) {
    double ratio = double(rs[i].end_us - rs[i].arrival_us) / double(rb[i].end_us - rb[i].arrival_us);
    bool inside = rb[i].arrival_us >= 5'000'000 && rb[i].end_us < 10'000'000;
    bool outside = rb[i].arrival_us >= 10'000'000 || rb[i].end_us < 5'000'000;
    if (inside) {
      EXPECT_NEAR(ratio, 3.0, 0.05) << "request " << i;
    }
    if (outside) {
      EXPECT_DOUBLE_EQ(ratio, 1.0) << "request " << i;
    }
  }
}

TEST(SimFaults, LinkLatencyDelaysEachMessageBothWays) {
  RunConfig c = config_of(1);
  Trace t = steady(20, 1'000'000, 200, 20);
  std::string base = out_dir("link_base"), slow = out_dir("link");
  run(c, t, {}, base);
  run(c, t, faults_of(c, R"({"faults": [{"at_s": 0, "type": "link", "worker": 0, "latency_ms": 50}]})"), slow);
  auto rb = read_rows(base), rs = read_rows(slow);
  for (std::size_t i = 0; i < rb.size(); ++i) {
    EXPECT_EQ((rs[i].end_us - rs[i].arrival_us) - (rb[i].end_us - rb[i].arrival_us), 100'000) << "request " << i;
  }
}

TEST(SimFaults, APartitionIsFoundByMissedHeartbeatsAndItsRequestsAreRetried) {
  RunConfig c = config_of(2, R"({"heartbeat": {"interval_ms": 100, "suspect_after_misses": 2,
                                               "down_after_misses": 5}})");
  Trace t = steady(400, 50'000, 2000, 200);  // long requests: several are on worker 0 at 5 s
  std::string dir = out_dir("partition");
  auto s = run(c, t, faults_of(c, R"({"faults": [{"at_s": 5, "type": "partition", "worker": 0,
                                                   "duration_s": 10}]})"),
               dir);
  EXPECT_EQ(s["requests"]["completed"], 400);
  int retried = 0;
  for (const Row& r : read_rows(dir)) {
    if (r.attempts < 2) continue;
    ++retried;
    EXPECT_EQ(r.worker, "h/gpu1");
    EXPECT_GE(r.end_us, 5'500'000);  // found down after 5 missed heartbeats
  }
  EXPECT_GT(retried, 0);
  std::vector<std::pair<std::string, double>> seen;
  for (const auto& ch : s["faults"]["health_changes"]) {
    if (ch["worker"] == "h/gpu0") seen.emplace_back(ch["to"].get<std::string>(), ch["at_s"].get<double>());
  }
  ASSERT_GE(seen.size(), 3u);
  EXPECT_EQ(seen[0].first, "suspect");
  EXPECT_NEAR(seen[0].second, 5.2, 1e-9);
  EXPECT_EQ(seen[1].first, "down");
  EXPECT_NEAR(seen[1].second, 5.5, 1e-9);
  EXPECT_EQ(seen[2].first, "up");
  EXPECT_NEAR(seen[2].second, 15.0, 1e-9);
}

TEST(SimFaults, ARouterRestartRejectsArrivalsAndDropsWhatWasInFlight) {
  RunConfig c = config_of(2);
  Trace t = steady(300, 50'000, 2000, 200);
  std::string dir = out_dir("router_restart");
  auto s = run(c, t, faults_of(c, R"({"faults": [{"at_s": 5, "type": "router_restart", "downtime_s": 2}]})"),
               dir);
  EXPECT_EQ(ended(s), 300);
  int rejected = 0, dropped = 0;
  for (const Row& r : read_rows(dir)) {
    if (r.outcome == "rejected") {
      ++rejected;
      EXPECT_EQ(r.reason, "router unavailable");
      EXPECT_TRUE(r.arrival_us >= 5'000'000 && r.arrival_us < 7'000'000);
    }
    if (r.outcome == "dropped") {
      ++dropped;
      EXPECT_EQ(r.reason, "router restarted");
      EXPECT_EQ(r.end_us, 5'000'000);
      EXPECT_LT(r.arrival_us, 5'000'000);
    }
  }
  EXPECT_EQ(rejected, 40);  // one every 50 ms for 2 s
  EXPECT_GT(dropped, 0);
}

TEST(SimFaults, ARequestTimeoutEndsRequestsTimedOutAndFreesTheirWorker) {
  RunConfig c = config_of(1, R"({"request_timeout_ms": 2000})", R"({"name": "continuous", "max_num_seqs": 2})");
  Trace t = steady(400, 5'000, 2000, 200);  // far more than one worker can serve two at a time
  std::string dir = out_dir("timeout");
  auto s = run(c, t, {}, dir);
  EXPECT_EQ(ended(s), 400);
  EXPECT_GT(s["requests"]["timed_out"].get<int>(), 0);
  EXPECT_GT(s["requests"]["completed"].get<int>(), 0);
  for (const Row& r : read_rows(dir)) {
    if (r.outcome == "timed_out") {
      EXPECT_EQ(r.reason, "no answer within 2000 ms");
      EXPECT_EQ(r.end_us - r.arrival_us, 2'000'000);
    } else {
      EXPECT_EQ(r.outcome, "completed");
      EXPECT_LE(r.end_us - r.arrival_us, 2'000'000);
    }
  }
}

TEST(SimFaults, ACrashHalfWayThroughTheAzureTraceLosesNothing) {
  const std::string path = kAzure + "AzureLLMInferenceTrace_conv.csv";
  if (::access(path.c_str(), R_OK) != 0) GTEST_SKIP() << "Azure trace not found at " << path;
  Trace t = read_trace(path);
  RunConfig c = load_run_config(kSource + "/configs/h100x8.json");
  FaultScenario f = load_fault_scenario(kSource + "/configs/faults/azure_crash_one.json", c.cluster);
  std::string dir = out_dir("azure_crash");
  auto s = run(c, t, f, dir);
  EXPECT_EQ(ended(s), std::int64_t(t.requests.size()));
  // One request of the trace (14,089 tokens) is longer than Llama-3-8B's context; all others complete.
  EXPECT_EQ(s["requests"]["rejected"].get<std::int64_t>(), 1);
  EXPECT_EQ(s["requests"]["completed"].get<std::int64_t>(), std::int64_t(t.requests.size()) - 1);
  EXPECT_GT(s["requests"]["retried"].get<int>(), 0);
  for (const Row& r : read_rows(dir)) {
    if (r.outcome == "rejected") {
      EXPECT_NE(r.reason.find(" tokens of context (input + output)"), std::string::npos) << r.reason;
    }
    if (r.worker == "node/gpu4") {
      EXPECT_FALSE(r.start_us >= 1'800'000'000 && r.start_us < 2'100'000'000);
    }
  }
}

}  // namespace
}  // namespace twinfer
