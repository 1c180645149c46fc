#include "serving/faults/fault_scenario.h"

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

ClusterConfig three_workers() {
  ClusterConfig c;
  for (int i = 0; i < 3; ++i) {
    InstanceSpec inst;
    inst.index = i;
    inst.name = "node/gpu" + std::to_string(i);
    inst.host = "node";
    inst.gpus = {i};
    inst.device = testing::test_device();
    inst.model = testing::test_model();
    c.instances.push_back(inst);
  }
  return c;
}

std::string error_of(const std::string& text) {
  try {
    parse_fault_scenario(nlohmann::json::parse(text), "f.json", three_workers());
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(FaultScenario, ParsesEveryTypeWithUnitsAndDefaults) {
  auto s = parse_fault_scenario(nlohmann::json::parse(R"({"faults": [
      {"at_s": 600, "type": "crash", "worker": 2, "recover_after_s": 120},
      {"at_s": 1.5, "type": "slowdown", "worker": "node/gpu1", "factor": 3},
      {"at_s": 100, "type": "link", "worker": 0, "latency_ms": 50, "loss": 0.05, "duration_s": 30},
      {"at_s": 100, "type": "partition", "worker": 0, "duration_s": 0.25},
      {"at_s": 900, "type": "router_restart", "downtime_s": 5},
      {"at_s": 40, "type": "device_error", "worker": 1, "duration_s": 20}]})"),
                                "f.json", three_workers());
  ASSERT_EQ(s.faults.size(), 6u);
  EXPECT_EQ(s.faults[5].type, FaultType::kDeviceError);
  EXPECT_EQ(s.faults[5].end_us(), 60'000'000);
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "device_error", "worker": 0, "factor": 2}]})"),
            "f.json: faults[0]: unknown key 'factor'; valid keys: at_s, duration_s, type, worker");
  EXPECT_EQ(s.faults[0].type, FaultType::kCrash);
  EXPECT_EQ(s.faults[0].worker, 2);
  EXPECT_EQ(s.faults[0].at_us, 600'000'000);
  EXPECT_EQ(s.faults[0].end_us(), 720'000'000);
  EXPECT_EQ(s.faults[1].worker, 1);
  EXPECT_EQ(s.faults[1].at_us, 1'500'000);
  EXPECT_DOUBLE_EQ(s.faults[1].factor, 3.0);
  EXPECT_EQ(s.faults[1].end_us(), kNever);
  EXPECT_EQ(s.faults[2].latency_us, 50'000);
  EXPECT_DOUBLE_EQ(s.faults[2].loss, 0.05);
  EXPECT_EQ(s.faults[3].duration_us, 250'000);
  EXPECT_EQ(s.faults[4].worker, -1);
  EXPECT_EQ(s.faults[4].duration_us, 5'000'000);
  EXPECT_EQ(s.faults[4].where, "f.json: faults[4]");
}

TEST(FaultScenario, EventsAreInTimeOrderWithEndsBeforeStartsAtOneTime) {
  auto s = parse_fault_scenario(nlohmann::json::parse(R"({"faults": [
      {"at_s": 10, "type": "crash", "worker": 0, "recover_after_s": 5},
      {"at_s": 15, "type": "crash", "worker": 0},
      {"at_s": 2, "type": "partition", "worker": 1, "duration_s": 1}]})"),
                                "f.json", three_workers());
  auto ev = s.events();
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].at_us, 2'000'000);
  EXPECT_TRUE(ev[0].starts);
  EXPECT_EQ(ev[1].at_us, 3'000'000);
  EXPECT_FALSE(ev[1].starts);
  EXPECT_EQ(ev[2].at_us, 10'000'000);
  EXPECT_EQ(ev[3].at_us, 15'000'000);
  EXPECT_FALSE(ev[3].starts);  // the first crash's recovery comes before the second crash
  EXPECT_EQ(ev[3].fault, &s.faults[0]);
  EXPECT_TRUE(ev[4].starts);
  EXPECT_EQ(ev[4].fault, &s.faults[1]);
}

TEST(FaultScenario, ErrorsNameTheFaultAndTheKey) {
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "melt", "worker": 0}]})"),
            "f.json: faults[0].type: unknown fault type 'melt'; valid: crash, slowdown, link, partition, router_restart, device_error");
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "crash", "worker": 7}]})"),
            "f.json: faults[0].worker: no worker 7; the cluster has 3 (0..2)");
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "crash", "worker": "gpu9"}]})"),
            "f.json: faults[0].worker: no worker named 'gpu9'; valid: node/gpu0, node/gpu1, node/gpu2");
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "slowdown", "worker": 0, "factor": 0.5}]})"),
            "f.json: faults[0].factor: must be in [1, 1e6]");
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "link", "worker": 0, "loss": 1}]})"),
            "f.json: faults[0].loss: must be in [0, 1)");
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": -1, "type": "crash", "worker": 0}]})").rfind(
                "f.json: faults[0].at_s: must be a time in [0, 1e9] s", 0),
            0u);
  EXPECT_EQ(error_of(R"({"faults": [{"type": "crash", "worker": 0}]})"), "f.json: faults[0]: missing key 'at_s'");
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "crash", "worker": 0, "factor": 2}]})"),
            "f.json: faults[0]: unknown key 'factor'; valid keys: at_s, recover_after_s, type, worker");
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "router_restart", "worker": 0, "downtime_s": 1}]})"),
            "f.json: faults[0].worker: a router restart names no worker");
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "link", "worker": 0}]})"),
            "f.json: faults[0]: a link fault needs 'latency_ms' or 'loss'");
  EXPECT_EQ(error_of(R"({"fault": []})"), "f.json: unknown key 'fault'; valid: faults");
  EXPECT_EQ(error_of(R"([1])"), "f.json: expected an object with a 'faults' array");
  EXPECT_EQ(error_of(R"({"faults": [3]})"), "f.json: faults[0]: expected an object, got 3");
}

TEST(FaultScenario, OverlappingFaultsOfOneKindOnOneWorkerAreErrors) {
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "crash", "worker": 0, "recover_after_s": 10},
                                    {"at_s": 5, "type": "crash", "worker": 0}]})"),
            "f.json: faults[1]: overlaps faults[0] (both crash of worker 0)");
  // Other workers, other kinds and back-to-back faults are fine.
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 1, "type": "crash", "worker": 0, "recover_after_s": 4},
                                    {"at_s": 5, "type": "crash", "worker": 0},
                                    {"at_s": 2, "type": "crash", "worker": 1},
                                    {"at_s": 2, "type": "partition", "worker": 0}]})"),
            "");
  // The overlap is found wherever it is in the file, naming the later fault first.
  EXPECT_EQ(error_of(R"({"faults": [{"at_s": 50, "type": "slowdown", "worker": 2, "factor": 2, "duration_s": 10},
                                    {"at_s": 1, "type": "slowdown", "worker": 2, "factor": 2, "duration_s": 10},
                                    {"at_s": 20, "type": "slowdown", "worker": 2, "factor": 2, "duration_s": 10},
                                    {"at_s": 5, "type": "slowdown", "worker": 2, "factor": 2, "duration_s": 10}]})"),
            "f.json: faults[3]: overlaps faults[1] (both slowdown of worker 2)");
}

// 100,000 faults are checked in n log n (the pairwise check took 8.7 s).
TEST(FaultScenario, AHundredThousandFaultsParse) {
  nlohmann::json list = nlohmann::json::array();
  for (int i = 0; i < 100000; ++i) {
    list.push_back({{"at_s", i}, {"type", "slowdown"}, {"worker", i % 3}, {"factor", 2}, {"duration_s", 1}});
  }
  const FaultScenario s = parse_fault_scenario(nlohmann::json{{"faults", list}}, "f.json", three_workers());
  EXPECT_EQ(s.faults.size(), 100000u);
  EXPECT_EQ(s.events().size(), 200000u);
}

TEST(FaultScenario, LoadNamesTheFileAndTheLineOfASyntaxError) {
  std::string path = ::testing::TempDir() + "/bad_faults.json";
  {
    std::ofstream out(path);
    out << "{\"faults\": [\n  {\"at_s\": 1,,}\n]}\n";
  }
  try {
    load_fault_scenario(path, three_workers());
    FAIL() << "no error";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(path + ": invalid JSON"), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
  }
  std::remove(path.c_str());
  EXPECT_THROW(load_fault_scenario("/nonexistent/f.json", three_workers()), Error);
}

}  // namespace
}  // namespace twinfer
