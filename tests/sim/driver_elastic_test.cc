// Elastic pools in the simulator: autoscaling with cold starts and drains, and the fleet's cost.
#include <unistd.h>

#include <cmath>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "serving/run_config.h"
#include "sim/simulator.h"
#include "tests/sim/sim_testing.h"
#include "traces/trace.h"

namespace twinfer {
namespace {

using testing::slurp;

struct Row {
  RequestId id = 0;
  TimeUs arrival_us = 0, start_us = 0, end_us = 0;
  std::string worker, outcome;
};

std::vector<Row> read_rows(const std::string& dir) {
  std::istringstream in(slurp(dir + "/requests.csv"));
  std::string line;
  std::getline(in, line);
  std::vector<Row> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> f(1);
    for (char ch : line) {
      if (ch == ',') {
        f.emplace_back();
      } else {
        f.back() += ch;
      }
    }
    Row r;
    r.id = std::stoull(f[0]);
    r.arrival_us = std::stoll(f[1]);
    r.worker = f[2];
    r.start_us = std::stoll(f[3]);
    r.end_us = std::stoll(f[5]);
    r.outcome = f[6];
    rows.push_back(r);
  }
  return rows;
}

// Requests at `rate` per second for each (duration_s, rate) phase in turn; 2000 prompt tokens,
// 50 generated.
Trace phases(const std::vector<std::pair<double, double>>& p) { return testing::phases(p, 50, "", 2000); }

// 8 instances of a 1B model on H100s, scaled by queue depth between 1 and 8 replicas.
RunConfig elastic_config(const std::string& autoscaling) {
  auto c = testing::small_config(8);
  c["policies"]["router"] = "least_outstanding";
  c["sim"]["timeline"] = true;
  if (!autoscaling.empty()) c["autoscaling"] = nlohmann::json::parse(autoscaling);
  return parse_run_config(c, "elastic.json");
}

const char kQueueDepth[] = R"({"autoscaler": {"name": "queue_depth", "target_per_replica": 2,
    "scale_down_stabilization_s": 10}, "interval_s": 1, "min_replicas": 1, "max_replicas": 8,
    "cold_start": {"startup_s": 2, "load_gbps": 2}})";

std::string out_dir(const std::string& name) {
  return ::testing::TempDir() + "/twinfer_elastic_" + name + "_" + std::to_string(::getpid());
}

nlohmann::json run(const RunConfig& c, const Trace& t, const std::string& dir) {
  sim::SimRunOptions opt;
  opt.out_dir = dir;
  opt.progress = false;
  return sim::simulate(c, t, opt);
}

// Replicas (ready + starting + draining) of the first pool at time t.
int replicas_at(const nlohmann::json& pool, double t) {
  const auto& r = pool["replicas"];
  int n = 0;
  for (std::size_t k = 0; k < r["t_s"].size() && r["t_s"][k].get<double>() <= t; ++k) {
    n = r["ready"][k].get<int>() + r["starting"][k].get<int>();
  }
  return n;
}

TEST(SimElastic, ALoadStepScalesUpAfterTheColdStartAndBackDownAfterTheWindow) {
  RunConfig c = elastic_config(kQueueDepth);
  // 20 s quiet, 20 s at 30 times the rate, 40 s quiet.
  Trace t = phases({{20, 20}, {20, 600}, {40, 20}});
  std::string dir = out_dir("step");
  auto s = run(c, t, dir);
  EXPECT_EQ(s["requests"]["completed"].get<std::size_t>(), t.requests.size());
  const auto& pool = s["autoscaling"]["pools"][0];
  EXPECT_EQ(replicas_at(pool, 19.5), 1);
  EXPECT_GE(replicas_at(pool, 30), 4);
  EXPECT_EQ(replicas_at(pool, 79), 1);
  EXPECT_GT(pool["scale_ups"].get<int>(), 0);
  EXPECT_GT(pool["scale_downs"].get<int>(), 0);
  // No request starts on a started worker before its cold start (2 s + 2 GB at 2 GB/s) has passed
  // since the first scale-up, which comes at the earliest at 20 s.
  const TimeUs cold_start = 3'000'000;
  std::map<std::string, TimeUs> first_start;
  for (const Row& r : read_rows(dir)) {
    ASSERT_EQ(r.outcome, "completed");
    auto it = first_start.find(r.worker);
    if (it == first_start.end() || r.start_us < it->second) first_start[r.worker] = r.start_us;
  }
  EXPECT_GE(first_start.size(), 4u);
  for (const auto& [worker, at] : first_start) {
    if (at < 20'000'000) continue;  // the initial replica
    EXPECT_GE(at, 20'000'000 + cold_start) << worker;
  }
  // The fleet paid for fewer GPU-hours than 8 GPUs throughout.
  const double span_h = s["sim"]["simulated_s"].get<double>() / 3600.0;
  EXPECT_LT(s["cost"]["gpu_hours"].get<double>(), 0.5 * 8 * span_h);
  EXPECT_GT(s["cost"]["gpu_hours"].get<double>(), 1.0 * span_h);
}

TEST(SimElastic, ADrainingWorkerTakesNoNewRequestAndLosesNone) {
  RunConfig c = elastic_config(kQueueDepth);
  Trace t = phases({{20, 600}, {30, 20}});
  std::string dir = out_dir("drain");
  auto s = run(c, t, dir);
  EXPECT_EQ(s["requests"]["completed"].get<std::size_t>(), t.requests.size());
  // Each worker's requests after its last arrival: drained workers see none after they drain. The
  // timeline's lifecycle markers say when each began to drain.
  nlohmann::json timeline = nlohmann::json::parse(slurp(dir + "/timeline.json"));
  std::map<int, double> drain_at_us;
  for (const auto& e : timeline["traceEvents"]) {
    if (e.value("name", "") == "draining" && e.value("ph", "") == "i") drain_at_us[e["tid"].get<int>()] = e["ts"];
  }
  ASSERT_FALSE(drain_at_us.empty());
  std::map<std::string, int> index = {};
  for (int i = 0; i < 8; ++i) index["h/gpu" + std::to_string(i)] = i;
  for (const Row& r : read_rows(dir)) {
    auto it = drain_at_us.find(index[r.worker]);
    if (it == drain_at_us.end()) continue;
    EXPECT_LT(double(r.arrival_us), it->second) << "request " << r.id << " routed to " << r.worker << " while draining";
  }
  bool counter = false;
  for (const auto& e : timeline["traceEvents"]) counter |= e.value("ph", "") == "C";
  EXPECT_TRUE(counter) << "the replica counter track";
}

TEST(SimElastic, TheSameRunGivesTheSameBytes) {
  RunConfig c = elastic_config(kQueueDepth);
  Trace t = phases({{10, 20}, {10, 600}, {20, 20}});
  std::string a = out_dir("same_a"), b = out_dir("same_b");
  auto sa = run(c, t, a);
  auto sb = run(c, t, b);
  sa.erase("sim");
  sb.erase("sim");
  EXPECT_EQ(sa.dump(), sb.dump());
  EXPECT_EQ(slurp(a + "/requests.csv"), slurp(b + "/requests.csv"));
  EXPECT_EQ(slurp(a + "/timeline.json"), slurp(b + "/timeline.json"));
}

TEST(SimElastic, AStaticPoolPaysForEveryGpuThroughout) {
  RunConfig c = elastic_config("");
  Trace t = phases({{10, 50}});
  auto s = run(c, t, out_dir("static"));
  const double hours = s["sim"]["simulated_s"].get<double>() / 3600.0;
  EXPECT_NEAR(s["cost"]["gpu_hours"].get<double>(), 8 * hours, 1e-9);
  EXPECT_NEAR(s["cost"]["cost"].get<double>(), 8 * hours * 4.0, 1e-9);  // H100 at 4.00 per hour
  EXPECT_FALSE(s.contains("autoscaling"));
}

// Two versions of "m" (family "m"), two H100 instances each: h/gpu0, h/gpu1 serve m-v1, h/gpu2,
// h/gpu3 m-v2; least-outstanding routing and `split` as the family's traffic split.
nlohmann::json two_versions(const nlohmann::json& split) {
  auto c = nlohmann::json::parse(R"({
    "cluster": {
      "models": {"m-v1": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16, "version_of": "m"},
                 "m-v2": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16, "version_of": "m"}},
      "hosts": [{"name": "h", "device": "H100", "gpus": 4,
                 "instances": [{"model": "m-v1", "count": 2}, {"model": "m-v2", "count": 2}]}]
    },
    "policies": {"router": "least_outstanding"},
    "sim": {"network": "none", "timeline": false}
  })");
  c["policies"]["traffic_split"] = {{"m", split}};
  return c;
}

const std::map<std::string, std::string> kVersionOfWorker = {
    {"h/gpu0", "m-v1"}, {"h/gpu1", "m-v1"}, {"h/gpu2", "m-v2"}, {"h/gpu3", "m-v2"}};

TEST(SimVersions, ACanaryScheduleMovesTrafficToTheNewVersionWithoutLosingARequest) {
  RunConfig rc = parse_run_config(two_versions(nlohmann::json::parse(R"({"name": "weighted",
      "schedule": [{"at_s": 0, "weights": {"m-v1": 100}}, {"at_s": 4, "weights": {"m-v1": 90, "m-v2": 10}},
                   {"at_s": 8, "weights": {"m-v1": 50, "m-v2": 50}}, {"at_s": 12, "weights": {"m-v2": 100}}]})")),
                                  "versions.json");
  Trace t = phases({{16, 200}});
  for (auto& r : t.requests) {
    r.model = "m";
    r.session = "s" + std::to_string(r.id % 97);
  }
  std::string dir = out_dir("canary");
  auto s = run(rc, t, dir);
  EXPECT_EQ(s["requests"]["completed"].get<std::size_t>(), t.requests.size());
  std::map<int, std::map<std::string, int>> per_phase;  // phase (4 s each) -> version -> requests
  for (const Row& r : read_rows(dir)) per_phase[int(r.arrival_us / 4'000'000)][kVersionOfWorker.at(r.worker)]++;
  EXPECT_EQ(per_phase[0]["m-v2"], 0);
  EXPECT_EQ(per_phase[3]["m-v1"], 0);
  // 97 sessions: 10 % and 50 % of them, within what 97 draws allow (5 standard deviations).
  const double v2_at_10 = double(per_phase[1]["m-v2"]) / 800, v2_at_50 = double(per_phase[2]["m-v2"]) / 800;
  EXPECT_NEAR(v2_at_10, 0.10, 5 * std::sqrt(0.1 * 0.9 / 97));
  EXPECT_NEAR(v2_at_50, 0.50, 5 * std::sqrt(0.5 * 0.5 / 97));
  // Per-version figures in the summary.
  ASSERT_TRUE(s.contains("models"));
  const int v1 = s["models"]["m-v1"]["requests"]["completed"], v2 = s["models"]["m-v2"]["requests"]["completed"];
  EXPECT_EQ(std::size_t(v1 + v2), t.requests.size());
  EXPECT_EQ(v1, per_phase[0]["m-v1"] + per_phase[1]["m-v1"] + per_phase[2]["m-v1"]);
}

TEST(SimVersions, AHotSwapLoadsTheNewVersionAheadMovesTheTrafficAndRetiresTheOldWithoutLosingARequest) {
  auto c = two_versions(nlohmann::json::parse(R"({"name": "weighted", "weights": {"m-v1": 1},
                                                  "schedule": [{"at_s": 10, "weights": {"m-v2": 1}}]})"));
  c["autoscaling"] = nlohmann::json::parse(R"({"autoscaler": {"name": "queue_depth", "target_per_replica": 1000},
      "interval_s": 1, "min_replicas": 2, "max_replicas": 2, "cold_start": {"startup_s": 2, "load_gbps": 2}})");
  RunConfig rc = parse_run_config(c, "swap.json");
  Trace t = phases({{20, 100}});
  for (auto& r : t.requests) r.model = "m";
  std::string dir = out_dir("hot_swap");
  auto s = run(rc, t, dir);
  EXPECT_EQ(s["requests"]["completed"].get<std::size_t>(), t.requests.size());
  // Cold start 3 s (2 s + 2 GB at 2 GB/s), decisions every 1 s: m-v2 starts at 6 s, ready at 9 s.
  const auto& v1 = s["autoscaling"]["pools"][0];
  const auto& v2 = s["autoscaling"]["pools"][1];
  ASSERT_EQ(v2["model"], "m-v2");
  EXPECT_EQ(replicas_at(v2, 5.9), 0);
  EXPECT_EQ(replicas_at(v2, 6.0), 2);
  EXPECT_EQ(v2["replicas"]["ready"].back(), 2);
  EXPECT_EQ(v1["replicas"]["ready"].back(), 0);  // retired
  EXPECT_EQ(v1["replicas"]["draining"].back(), 0);
  for (const Row& r : read_rows(dir)) {
    ASSERT_EQ(r.outcome, "completed");
    EXPECT_EQ(kVersionOfWorker.at(r.worker), r.arrival_us < 10'000'000 ? "m-v1" : "m-v2") << r.id;
  }
  // m-v1 stopped once its last request ended: paid 2 x (about 10 s), m-v2 2 x 14 s and a little.
  const double end_s = s["duration_s"].get<double>();
  EXPECT_LT(s["cost"]["gpu_hours"].get<double>(), (2 * 11.0 + 2 * (end_s - 6)) / 3600);
  EXPECT_GT(s["cost"]["gpu_hours"].get<double>(), (2 * 10.0 + 2 * (end_s - 6)) / 3600);
}

TEST(SimVersions, ASplitForAnUnknownFamilyIsAnErrorNamingIt) {
  auto c = testing::small_config(1);
  c["policies"]["traffic_split"] = {{"chat", "weighted"}};
  RunConfig rc = parse_run_config(c, "bad.json");
  std::string e = testing::error_of([&] { run(rc, phases({{1, 10}}), out_dir("bad_split")); });
  EXPECT_NE(e.find("policies.traffic_split.chat: no model is a version of 'chat'"), std::string::npos) << e;
}

}  // namespace
}  // namespace twinfer
