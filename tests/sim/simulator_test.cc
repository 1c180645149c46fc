#include "sim/simulator.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include "core/error.h"
#include "serving/run_config.h"
#include "tests/sim/sim_testing.h"
#include "traces/trace.h"

namespace twinfer {
namespace {

using testing::error_of;
using testing::slurp;

const std::string kSource = TWINFER_SOURCE_DIR;
const std::string kAzure = std::string(TWINFER_SHARED_TRACES_DIR) + "/azure_llm_2023/";

Trace trace_of(std::vector<Request> requests) {
  Trace t;
  for (std::size_t i = 0; i < requests.size(); ++i) requests[i].id = i;
  t.requests = std::move(requests);
  t.source = "test";
  return t;
}

Request req(TimeUs arrival_us, int input, int output) {
  Request r;
  r.arrival_us = arrival_us;
  r.input_tokens = input;
  r.output_tokens = output;
  return r;
}

std::string out_dir(const std::string& name) {
  return ::testing::TempDir() + "/twinfer_" + name + "_" + std::to_string(::getpid());
}

class NetworkModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(NetworkModelTest, PayloadsCrossLinksWithLatencyAndBandwidth) {
  testing::register_test_cost_model();
  auto c = testing::small_config(1);
  c["policies"]["batcher"] = {{"name", "request_level"}, {"max_batch_size", 1}, {"max_queue_delay_us", 0}};
  c["policies"]["cost_model"] = "test_token_us";
  c["sim"] = {{"network", GetParam()}, {"request_bytes_per_token", 1000}, {"response_bytes_per_token", 1000},
              {"message_overhead_bytes", 0}, {"timeline", false}};
  c["cluster"]["router"] = {{"nic", {{"bandwidth_gbps", 1}, {"latency_us", 100}}}};
  c["cluster"]["hosts"][0]["nic"] = {{"bandwidth_gbps", 2}, {"latency_us", 50}};
  // 1000 input tokens = 1 MB: 150 us of latency + 1 ms over the 1 GB/s bottleneck; 1000 us of
  // service; 10 output tokens = 10 kB back: 150 us + 10 us.
  auto s = sim::simulate(parse_run_config(c, ""), trace_of({req(0, 1000, 10)}), {});
  EXPECT_NEAR(s["latency_ms"]["mean"].get<double>(), (1150 + 1000 + 160) / 1000.0, 0.002);
  EXPECT_NEAR(s["queue_ms"]["mean"].get<double>(), 1.150, 0.002);
}

INSTANTIATE_TEST_SUITE_P(Models, NetworkModelTest, ::testing::Values("flow", "latency"));

// The host-memory KV tier: a prefix the device evicted comes back from host memory, and the step
// that uses it waits for the copy over the instance's host link (latency + bytes / bandwidth): a
// SimGrid flow with the flow network, the same time computed without one.
class HostTierTest : public ::testing::TestWithParam<std::string> {};

TEST_P(HostTierTest, APrefixLoadedFromTheHostTierWaitsForItsCopyOverTheHostLink) {
  testing::register_test_cost_model();
  const auto last_ttft_ms = [](const std::string& network, int host_blocks) {
    auto c = testing::small_config(1);
    c["policies"]["batcher"] = {{"name", "continuous"}, {"kv_blocks", 4}, {"prefix_caching", true},
                                {"host_kv_blocks", host_blocks}};
    c["policies"]["cost_model"] = "test_token_us";
    c["sim"]["network"] = network;
    c["cluster"]["hosts"][0]["host_link"] = {{"bandwidth_gbps", 1}, {"latency_us", 100}};
    // A (63 + 1 tokens: four blocks), then B whose prompt takes every device block (A's evicted),
    // then C with A's prompt: its three full blocks (48 of 63 tokens) are in the host tier only.
    std::vector<Request> rs = {req(0, 63, 1), req(10'000, 63, 1), req(20'000, 63, 1)};
    rs[0].prefix = rs[2].prefix = BlockHashes(16, {1, 2, 3, 4});
    rs[1].prefix = BlockHashes(16, {9, 10, 11, 12});
    const auto s = sim::simulate(parse_run_config(c, ""), trace_of(rs), {});
    EXPECT_EQ(s["requests"]["completed"], 3);
    EXPECT_EQ(s["prefix_cache"]["host_cached_tokens"], host_blocks > 0 ? 48 : 0);
    EXPECT_EQ(s["prefix_cache"]["cached_tokens"], host_blocks > 0 ? 48 : 0);
    return s["ttft_ms"]["max"].get<double>();
  };
  // 2 MiB blocks (16 tokens of 16 layers x 2048 x 2 bytes x K and V) over 1 GB/s: 100 us + 3 x
  // 2,097 us to load, then a 15-token chunk (15 us) instead of 63 tokens (63 us).
  const double load_ms = (100 + 3 * 2097.152) / 1000;
  EXPECT_NEAR(last_ttft_ms(GetParam(), 8) - last_ttft_ms(GetParam(), 0), load_ms - 0.048, 0.002);
}

INSTANTIATE_TEST_SUITE_P(Networks, HostTierTest, ::testing::Values("flow", "latency", "none"));

// Two workers of one host load their prefixes from the host tier at once: with the host's memory
// bandwidth set to one link's, the two copies share it and take twice as long; with room for both,
// as without the key. Other networks time each copy alone and refuse the key.
TEST(Simulator, HostTierCopiesOfOneHostShareItsMemoryBandwidthWithFlows) {
  testing::register_test_cost_model();
  const auto config = [](const std::string& network, double memory_gbps) {
    auto c = testing::small_config(2);
    c["policies"]["batcher"] = {{"name", "continuous"}, {"kv_blocks", 4}, {"prefix_caching", true}, {"host_kv_blocks", 8}};
    c["policies"]["cost_model"] = "test_token_us";
    c["sim"]["network"] = network;
    c["cluster"]["hosts"][0]["host_link"] = {{"bandwidth_gbps", 1}, {"latency_us", 100}};
    if (memory_gbps > 0) c["cluster"]["hosts"][0]["memory_bandwidth_gbps"] = memory_gbps;
    return parse_run_config(c, "");
  };
  const auto last_ttft_ms = [&](double memory_gbps) {
    // Round robin: each worker gets A, then B (evicting A from its device), then A's prompt again,
    // both workers at the same moment: three 2 MiB blocks each from the host tier.
    std::vector<Request> rs = {req(0, 63, 1), req(0, 63, 1), req(10'000, 63, 1), req(10'000, 63, 1),
                               req(20'000, 63, 1), req(20'000, 63, 1)};
    for (int i : {0, 1, 4, 5}) rs[static_cast<std::size_t>(i)].prefix = BlockHashes(16, {1, 2, 3, 4});
    for (int i : {2, 3}) rs[static_cast<std::size_t>(i)].prefix = BlockHashes(16, {9, 10, 11, 12});
    const auto s = sim::simulate(config("flow", memory_gbps), trace_of(rs), {});
    EXPECT_EQ(s["prefix_cache"]["host_cached_tokens"], 2 * 48);
    return s["ttft_ms"]["max"].get<double>();
  };
  const double alone = last_ttft_ms(0);
  EXPECT_NEAR(last_ttft_ms(1) - alone, 3 * 2.097152, 0.002) << "each copy at half the bandwidth";
  EXPECT_NEAR(last_ttft_ms(2), alone, 0.001) << "room for both copies";
  EXPECT_EQ(error_of([&] { sim::simulate(config("latency", 2), trace_of({req(0, 10, 1)}), {}); }),
            "cluster.hosts (host 'h').memory_bandwidth_gbps: the host memory shared by the KV host tier's copies is "
            "modeled with sim.network=flow only (sim.network is 'latency'); remove the key or use flow");
}

TEST(Simulator, FlowNetworkSharesBandwidthLatencyNetworkDoesNot) {
  testing::register_test_cost_model();
  auto c = testing::small_config(2);
  c["policies"]["batcher"] = {{"name", "request_level"}, {"max_batch_size", 1}, {"max_queue_delay_us", 0}};
  c["policies"]["cost_model"] = "test_token_us";
  c["cluster"]["router"] = {{"nic", {{"bandwidth_gbps", 1}, {"latency_us", 0}}}};
  c["cluster"]["hosts"][0]["nic"] = {{"bandwidth_gbps", 100}, {"latency_us", 0}};
  auto latency_ms = [&](const std::string& network) {
    c["sim"] = {{"network", network}, {"request_bytes_per_token", 1000}, {"response_bytes_per_token", 0},
                {"message_overhead_bytes", 0}, {"timeline", false}};
    // Two 1 MB requests leave the router at once, to two workers: sharing the router's 1 GB/s
    // link, both arrive after 2 ms; without sharing, after 1 ms.
    return sim::simulate(parse_run_config(c, ""), trace_of({req(0, 1000, 1), req(0, 1000, 1)}), {})["queue_ms"]["mean"]
        .get<double>();
  };
  EXPECT_NEAR(latency_ms("flow"), 2.0, 0.01);
  EXPECT_NEAR(latency_ms("latency"), 1.0, 0.01);
  EXPECT_NEAR(latency_ms("none"), 0.0, 0.001);
}

TEST(Simulator, WritesTheThreeFilesAndConservesRequests) {
  auto c = testing::small_config(2);
  c["sim"]["timeline"] = true;
  std::vector<Request> rs;
  for (int i = 0; i < 200; ++i) rs.push_back(req(i * 5000, 100 + (i * 37) % 900, 1 + (i * 13) % 200));
  std::string dir = out_dir("files");
  sim::SimRunOptions opt;
  opt.out_dir = dir;
  auto s = sim::simulate(parse_run_config(c, ""), trace_of(rs), opt);
  EXPECT_EQ(s["requests"]["total"], 200);
  EXPECT_EQ(s["requests"]["completed"].get<int>() + s["requests"]["rejected"].get<int>() +
                s["requests"]["dropped"].get<int>(),
            200);
  auto summary = nlohmann::json::parse(slurp(dir + "/summary.json"));
  EXPECT_EQ(summary["requests"], s["requests"]);
  std::string csv = slurp(dir + "/requests.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 201);
  auto timeline = nlohmann::json::parse(slurp(dir + "/timeline.json"));
  std::int64_t iterations = 0;
  for (const auto& e : timeline["traceEvents"]) {
    if (e["ph"] == "X") iterations += e["args"]["iterations"].get<std::int64_t>();
  }
  EXPECT_EQ(iterations, s["workers"][0]["batches"].get<std::int64_t>() + s["workers"][1]["batches"].get<std::int64_t>());
}

TEST(Simulator, RateScaleCompressesArrivals) {
  auto c = parse_run_config(testing::small_config(1), "");
  Trace t = trace_of({req(0, 10, 1), req(1000000, 10, 1)});
  Trace fast = scale_trace(t, 4);
  EXPECT_EQ(fast.requests[1].arrival_us, 250000);
  EXPECT_NE(error_of([&] { scale_trace(t, 0); }).find("--rate-scale must be a finite number > 0, got 0"),
            std::string::npos);
  // A scale so small that the arrivals would overflow the clock (they once wrapped negative).
  EXPECT_NE(error_of([&] { scale_trace(t, 1e-300); }).find("past the run clock's range"), std::string::npos);
  auto s = sim::simulate(c, t, {});
  sim::SimRunOptions opt;
  opt.rate_scale = 4;
  auto s4 = sim::simulate(c, t, opt);
  EXPECT_LT(s4["duration_s"].get<double>(), s["duration_s"].get<double>());
}

TEST(Simulator, BadPolicyIsAnErrorNamingTheKey) {
  auto c = testing::small_config(1);
  c["policies"]["router"] = "fastest";
  std::string e = error_of([&] { sim::simulate(parse_run_config(c, ""), trace_of({req(0, 1, 1)}), {}); });
  EXPECT_NE(e.find("policies.router: unknown router 'fastest'; valid: "), std::string::npos) << e;
  EXPECT_NE(e.find("least_work"), std::string::npos) << e;
}

TEST(Simulator, RequestsForAnUnservedModelAreRejectedWithAReason) {
  Trace t = trace_of({req(0, 10, 1), req(10, 10, 1)});
  t.requests[1].model = "other";
  auto s = sim::simulate(parse_run_config(testing::small_config(1), ""), t, {});
  EXPECT_EQ(s["requests"]["completed"], 1);
  EXPECT_EQ(s["requests"]["rejected"], 1);
  EXPECT_EQ(s["reasons"]["rejected"].size(), 1u);
}

// Conservation and determinism on the real Azure traces.
class AzureTraceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (::access((kAzure + GetParam()).c_str(), R_OK) != 0) {
      GTEST_SKIP() << "Azure trace not found at " << kAzure << GetParam() << " (../shared/traces is absent)";
    }
  }
};

TEST_P(AzureTraceTest, EveryRequestEndsOnceAndOutputsAreByteIdentical) {
  Trace t = read_trace(kAzure + GetParam());
  RunConfig c = load_run_config(kSource + "/configs/h100x8.json", {"policies.router=power_of_two"});
  std::string a = out_dir("azure_a"), b = out_dir("azure_b");
  sim::SimRunOptions opt;
  opt.seed = 3;
  opt.out_dir = a;
  auto sa = sim::simulate(c, t, opt);
  opt.out_dir = b;
  auto sb = sim::simulate(c, t, opt);
  const auto& q = sa["requests"];
  EXPECT_EQ(q["total"].get<std::size_t>(), t.requests.size());
  EXPECT_EQ(q["completed"].get<int>() + q["rejected"].get<int>() + q["dropped"].get<int>(), q["total"].get<int>());
  EXPECT_EQ(slurp(a + "/requests.csv"), slurp(b + "/requests.csv"));
  EXPECT_EQ(slurp(a + "/timeline.json"), slurp(b + "/timeline.json"));
  sa.erase("sim");
  sb.erase("sim");
  EXPECT_EQ(sa.dump(), sb.dump());

  opt.seed = 4;
  opt.out_dir = b;
  sim::simulate(c, t, opt);
  EXPECT_NE(slurp(a + "/requests.csv"), slurp(b + "/requests.csv")) << "the seed must matter to a random router";
}

INSTANTIATE_TEST_SUITE_P(Traces, AzureTraceTest,
                         ::testing::Values("AzureLLMInferenceTrace_code.csv", "AzureLLMInferenceTrace_conv.csv"));

}  // namespace
}  // namespace twinfer
