#include "serving/client_log.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/testing.h"

namespace twinfer {
namespace {

std::string write(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/client_log_" + name;
  std::ofstream(path) << text;
  return path;
}

// vllm bench serve's result, as --save-result --save-detailed writes it (only the keys read).
nlohmann::json vllm_result() {
  return nlohmann::json::parse(R"({
    "duration": 3.1, "completed": 3, "failed": 1,
    "input_lens": [100, 40, 70, 55],
    "output_lens": [10, 0, 5, 1],
    "ttfts": [0.020, 0.0, 0.015, 0.030],
    "itls": [[0.01], [], [0.01], []],
    "latencies": [0.110, 0.0, 0.055, 0.030],
    "start_times": [1000.500, 1000.100, 1000.250, 1000.000],
    "errors": ["", "Bad Request", "", ""]
  })");
}

TEST(ClientLog, ReadsVllmBenchResultsInSendOrderLeavingFailuresOut) {
  const ClientLog log = read_client_log(write("ok.json", vllm_result().dump()));
  EXPECT_EQ(log.format, "vllm-bench");
  EXPECT_EQ(log.left_out, 1);
  ASSERT_EQ(log.trace.requests.size(), 3u);
  ASSERT_EQ(log.measured.size(), 3u);
  // Sorted by start time, the earliest at 0: 1000.000 (55 tokens), 1000.250 (70), 1000.500 (100).
  EXPECT_EQ(log.trace.requests[0].arrival_us, 0);
  EXPECT_EQ(log.trace.requests[0].input_tokens, 55);
  EXPECT_EQ(log.trace.requests[1].arrival_us, 250'000);
  EXPECT_EQ(log.trace.requests[2].arrival_us, 500'000);
  EXPECT_EQ(log.trace.requests[2].input_tokens, 100);
  EXPECT_EQ(log.trace.requests[2].output_tokens, 10);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(log.trace.requests[i].id, i);
    EXPECT_EQ(log.measured[i].id, i);
    EXPECT_TRUE(log.measured[i].ended);
    EXPECT_EQ(log.measured[i].outcome, Outcome::kCompleted);
  }
  EXPECT_EQ(log.measured[2].first_token_us, 500'000 + 20'000);
  EXPECT_EQ(log.measured[2].end_us, 500'000 + 110'000);
  EXPECT_EQ(log.measured[1].end_us - log.measured[1].first_token_us, 40'000);
}

TEST(ClientLog, BadVllmResultsAreErrorsNamingTheFileAndKey) {
  const auto error = [](const std::string& name, const nlohmann::json& doc) {
    const std::string path = write(name, doc.dump());
    const std::string e = testing::error_of([&] { read_client_log(path); });
    EXPECT_EQ(e.rfind(path + ": ", 0), 0u) << e;
    return e;
  };
  auto no_starts = vllm_result();
  no_starts.erase("start_times");
  EXPECT_NE(error("nostart.json", no_starts).find("no 'start_times' array: per-request results are saved by "
                                                  "'vllm bench serve --save-result --save-detailed'"),
            std::string::npos);
  auto short_ttfts = vllm_result();
  short_ttfts["ttfts"].erase(0);
  EXPECT_NE(error("short.json", short_ttfts).find("'ttfts' has 3 entries, 'input_lens' 4"), std::string::npos);
  auto negative = vllm_result();
  negative["latencies"][2] = -1;
  EXPECT_NE(error("neg.json", negative).find("latencies[2]: expected a number >= 0, got -1"), std::string::npos);
  auto text = vllm_result();
  text["input_lens"][0] = "100";
  EXPECT_NE(error("text.json", text).find("input_lens[0]: expected a number >= 0"), std::string::npos);
  auto late = vllm_result();
  late["ttfts"][0] = 0.5;
  EXPECT_NE(error("late.json", late).find("request 0: ttfts (0.5"), std::string::npos);
  auto none = vllm_result();
  none["errors"] = {"x", "x", "x", "x"};
  EXPECT_NE(error("none.json", none).find("no completed request"), std::string::npos);
  EXPECT_NE(error("array.json", nlohmann::json::array()).find("expected a JSON object"), std::string::npos);
  const std::string other = write("log.txt", "x");
  EXPECT_NE(testing::error_of([&] { read_client_log(other); }).find("unknown client log"), std::string::npos);
}

TEST(ClientLog, ReadsARunsRequestsCsvWithEveryOutcome) {
  const std::string dir = ::testing::TempDir() + "/client_log_run";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/requests.csv")
      << "id,arrival_us,start_us,first_token_us,end_us,outcome,reason,input_tokens,output_tokens,preemptions,"
         "attempts,worker\n"
         "0,0,10,500,900,completed,,64,5,0,1,w0\n"
         "1,200,-1,-1,200,rejected,queue full,30,2,0,0,\n"
         "2,700,710,1100,1600,completed,,12,3,0,1,w1\n";
  const ClientLog log = read_client_log(dir);
  EXPECT_EQ(log.format, "twinfer-requests");
  ASSERT_EQ(log.trace.requests.size(), 3u);
  EXPECT_EQ(log.trace.requests[1].arrival_us, 200);
  EXPECT_EQ(log.trace.requests[1].input_tokens, 30);
  EXPECT_EQ(log.measured[1].outcome, Outcome::kRejected);
  EXPECT_EQ(log.measured[2].first_token_us, 1100);
  const std::string empty = ::testing::TempDir() + "/client_log_empty";
  std::filesystem::create_directories(empty);
  EXPECT_EQ(testing::error_of([&] { read_client_log(empty); }), empty + ": a folder without requests.csv");
}

}  // namespace
}  // namespace twinfer
