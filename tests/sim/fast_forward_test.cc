// sim.fast_forward: runs of steady decode steps carried out at once, and workers running them ahead
// of the router, change nothing in what the simulator writes, only how many events it takes.
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

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

// Every kind of fault within the first minutes.
const char* const kFaults = R"({"faults": [
  {"at_s": 20, "type": "slowdown", "worker": 1, "factor": 3, "duration_s": 30},
  {"at_s": 40, "type": "link", "worker": 2, "latency_ms": 20, "loss": 0.02, "duration_s": 30},
  {"at_s": 60, "type": "crash", "worker": 3, "recover_after_s": 30},
  {"at_s": 90, "type": "partition", "worker": 4, "duration_s": 20},
  {"at_s": 120, "type": "router_restart", "downtime_s": 5},
  {"at_s": 150, "type": "device_error", "worker": 5, "duration_s": 10}
]})";

struct Scenario {
  std::string name;
  std::string config;                  // under configs/
  std::vector<std::string> overrides;  // --set assignments
  std::string faults;                  // a fault scenario's JSON, or empty
  double rate_scale = 1;
  bool runs_ahead = true;  // the policies let workers run ahead of the router
};

std::ostream& operator<<(std::ostream& os, const Scenario& s) { return os << s.name; }

struct Outputs {
  nlohmann::json summary;
  std::int64_t events = 0;
  std::string requests, timeline, steps;
};

Outputs run(const Scenario& s, const Trace& trace, bool fast_forward) {
  std::vector<std::string> overrides = s.overrides;
  overrides.push_back("sim.fast_forward=" + std::string(fast_forward ? "true" : "false"));
  overrides.push_back("sim.step_log=true");
  overrides.push_back("sim.timeline=true");
  RunConfig config = load_run_config(kSource + "/configs/" + s.config, overrides);
  sim::SimRunOptions opt;
  opt.seed = 3;
  opt.progress = false;
  if (!s.faults.empty()) {
    const std::string path = ::testing::TempDir() + "/fast_forward_" + s.name + "_faults.json";
    std::ofstream(path) << s.faults;
    opt.faults = load_fault_scenario(path, config.cluster);
  }
  opt.out_dir = ::testing::TempDir() + "/fast_forward_" + s.name + (fast_forward ? "_on" : "_off");
  Outputs out;
  out.summary = sim::simulate(config, s.rate_scale == 1 ? trace : scale_trace(trace, s.rate_scale), opt);
  out.events = out.summary["sim"]["events"].get<std::int64_t>();
  out.summary.erase("sim");
  out.requests = slurp(opt.out_dir + "/requests.csv");
  out.timeline = slurp(opt.out_dir + "/timeline.json");
  out.steps = slurp(opt.out_dir + "/steps.csv");
  return out;
}

class FastForward : public ::testing::TestWithParam<Scenario> {};

TEST_P(FastForward, WritesTheSameOutputsWithFewerEvents) {
  const std::string path = kAzure + "AzureLLMInferenceTrace_conv.csv";
  if (::access(path.c_str(), R_OK) != 0) GTEST_SKIP() << "Azure trace not found at " << path;
  Trace trace = read_trace(path);
  trace.requests.resize(2000);  // the first 5 minutes
  const Scenario& s = GetParam();
  const Outputs on = run(s, trace, true);
  const Outputs off = run(s, trace, false);
  EXPECT_EQ(on.summary.dump(2), off.summary.dump(2));
  EXPECT_EQ(on.requests, off.requests);
  EXPECT_EQ(on.timeline, off.timeline);
  EXPECT_EQ(on.steps, off.steps);
  EXPECT_EQ(on.summary["requests"]["total"].get<std::int64_t>(), 2000);
  if (s.runs_ahead) { EXPECT_LT(on.events * 4, off.events * 3) << "fast forward should save events"; }
}

INSTANTIATE_TEST_SUITE_P(
    Scenarios, FastForward,
    ::testing::Values(
        Scenario{"flow_round_robin", "h100x8.json", {}, "", 1, true},
        Scenario{"latency_least_outstanding", "h100x8.json",
                 {"sim.network=\"latency\"", "policies.router=\"least_outstanding\""}, "", 1, true},
        Scenario{"none_dispatch_delay_power_of_two", "h100x8.json",
                 {"sim.network=\"none\"", "sim.dispatch_us=400", "policies.router=\"power_of_two\""}, "", 2, true},
        // Reads KV use: steady steps are carried out at once, but no worker runs ahead.
        Scenario{"multi_resource", "h100x8.json", {"policies.router=\"multi_resource\""}, "", 1, false},
        Scenario{"kv_pressure_sjf", "h100x8.json",
                 {R"(policies.batcher={"name":"continuous","order":"sjf","kv_blocks":500,"max_num_seqs":64})"},
                 "",
                 3,
                 true},
        Scenario{"timeouts_and_queue_bound", "h100x8.json",
                 {"protection.request_timeout_ms=3000", R"(policies.admission={"name":"queue_bound","max_waiting":8})"},
                 "",
                 4,
                 true},
        Scenario{"faults", "h100x8.json", {"sim.network=\"latency\"", "protection.request_timeout_ms=20000"},
                 kFaults, 1, true},
        Scenario{"faults_flow", "h100x8.json", {}, kFaults, 2, true}),
    [](const ::testing::TestParamInfo<Scenario>& info) { return info.param.name; });

}  // namespace
}  // namespace twinfer
