#include <chrono>
#include <filesystem>

#include <gtest/gtest.h>

#include "tests/traces/trace_test_files.h"
#include "traces/trace.h"
#include "traces/trace_formats.h"

namespace twinfer {
namespace {

using testing::error_of;
using testing::fixture_path;
using testing::write_temp_file;

const std::string kPath = "a.csv";
const LineLocation kAt{&kPath, 9};

TimeUs timestamp_us(std::string_view text) { return parse_azure_timestamp_us(text, kAt); }

TEST(AzureTimestamp, CountsMicrosecondsSinceTheEpoch) {
  EXPECT_EQ(timestamp_us("1970-01-01 00:00:00"), 0);
  EXPECT_EQ(timestamp_us("1970-01-02 00:00:00.000001"), 86'400'000'001);
  // calendar.timegm((2023, 11, 16, 18, 17, 3)) * 10**6 + 979960
  EXPECT_EQ(timestamp_us("2023-11-16 18:17:03.9799600"), 1'700'158'623'979'960);
  EXPECT_EQ(timestamp_us("2024-02-29 00:00:00"), 1'709'164'800'000'000);
  EXPECT_EQ(timestamp_us("2023-11-16T18:17:03.97996"), 1'700'158'623'979'960);
}

TEST(AzureTimestamp, RoundsTheSeventhDigitHalfUp) {
  EXPECT_EQ(timestamp_us("1970-01-01 00:00:00.0000004"), 0);
  EXPECT_EQ(timestamp_us("1970-01-01 00:00:00.0000005"), 1);
  EXPECT_EQ(timestamp_us("1970-01-01 00:00:59.9999995"), 60'000'000);
}

TEST(AzureTimestamp, RejectsBadShapesAndDates) {
  const std::string suffix = " (expected YYYY-MM-DD HH:MM:SS.fffffff)";
  EXPECT_EQ(error_of([] { timestamp_us("2023-11-16 18:17"); }),
            "a.csv:9: TIMESTAMP: bad timestamp: '2023-11-16 18:17'" + suffix);
  EXPECT_EQ(error_of([] { timestamp_us("2023-11-16 18:17:03."); }),
            "a.csv:9: TIMESTAMP: bad timestamp: '2023-11-16 18:17:03.'" + suffix);
  EXPECT_EQ(error_of([] { timestamp_us("2023-02-29 00:00:00"); }),
            "a.csv:9: TIMESTAMP: no such date: '2023-02-29 00:00:00'" + suffix);
  EXPECT_EQ(error_of([] { timestamp_us("2023-11-16 24:00:00"); }),
            "a.csv:9: TIMESTAMP: no such time of day: '2023-11-16 24:00:00'" + suffix);
  EXPECT_EQ(error_of([] { timestamp_us("1700158623.9"); }),
            "a.csv:9: TIMESTAMP: bad timestamp: '1700158623.9'" + suffix);
}

TEST(AzureTrace, ReadsAcrossMidnightAndNewYearExactToTheMicrosecond) {
  // The fixture has CRLF line endings, no final newline, and rows out of order.
  const Trace t = read_trace(fixture_path("azure_good.csv"), "azure");
  ASSERT_EQ(t.requests.size(), 4u);
  const TimeUs expected_arrival_us[] = {0, 1'500'000, 1'500'000, 2'500'001};
  const std::int32_t expected_input[] = {100, 4808, 5, 3180};
  const std::int32_t expected_output[] = {0, 10, 6, 8};
  for (std::size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(t.requests[i].id, i);
    EXPECT_EQ(t.requests[i].arrival_us, expected_arrival_us[i]);
    EXPECT_EQ(t.requests[i].input_tokens, expected_input[i]);
    EXPECT_EQ(t.requests[i].output_tokens, expected_output[i]);
    EXPECT_EQ(t.requests[i].model, "");
    EXPECT_EQ(t.requests[i].deadline_us, kNever);
    EXPECT_EQ(t.requests[i].session, "");
  }
}

TEST(AzureTrace, MalformedRowsNameFileLineAndField) {
  const std::string header = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
  const std::string good = "2023-11-16 18:17:03.9799600,1,1\n";
  const std::string p1 = write_temp_file("1.csv", header + good + "2023-11-16 18:17:04.0000000,-1,1\n");
  EXPECT_EQ(error_of([&] { read_trace(p1, "azure"); }), p1 + ":3: ContextTokens: negative token count -1");
  const std::string p2 = write_temp_file("2.csv", header + good + "2023-11-16 18:17:04.0000000,5\n");
  EXPECT_EQ(error_of([&] { read_trace(p2, "azure"); }),
            p2 + ":3: GeneratedTokens: missing field (the line has 2 fields; the header has 3)");
  const std::string p3 = write_temp_file("3.csv", "TIMESTAMP,ContextTokens\n" + good);
  EXPECT_EQ(error_of([&] { read_trace(p3, "azure"); }),
            p3 + ":1: GeneratedTokens: missing column; required columns: TIMESTAMP, ContextTokens, GeneratedTokens");
  const std::string p4 = write_temp_file("4.csv", header + "2023-11-16 18:17:04,1,x\n");
  EXPECT_EQ(error_of([&] { read_trace(p4, "azure"); }), p4 + ":2: GeneratedTokens: not an integer: 'x'");
  const std::string p5 = write_temp_file("5.csv", header);
  EXPECT_EQ(error_of([&] { read_trace(p5, "azure"); }), p5 + ": no requests (azure trace)");
}

// The real traces of /work/shared/traces (README there), skipped where they are absent.
class RealAzureTrace : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::is_directory(dir_)) {
      GTEST_SKIP() << "shared Azure traces not found at " << dir_
                   << " (set TWINFER_SHARED_TRACES_DIR to the shared traces folder to run this test)";
    }
  }
  std::string path_of(const std::string& name) const { return dir_ + "/AzureLLMInferenceTrace_" + name + ".csv"; }
  void expect_hour_long_sorted_trace(const Trace& t, std::size_t requests) {
    ASSERT_EQ(t.requests.size(), requests);
    EXPECT_EQ(t.requests.front().arrival_us, 0);
    for (std::size_t i = 0; i < t.requests.size(); ++i) {
      ASSERT_EQ(t.requests[i].id, i);
      if (i > 0) {
        ASSERT_GE(t.requests[i].arrival_us, t.requests[i - 1].arrival_us) << "at " << i;
      }
      ASSERT_GT(t.requests[i].input_tokens, 0) << "at " << i;
    }
    // One hour of production traffic: the last request arrives between 55 and 60 minutes in.
    EXPECT_GT(t.requests.back().arrival_us, 55 * 60 * kUsPerS);
    EXPECT_LE(t.requests.back().arrival_us, 60 * 60 * kUsPerS);
  }

  const std::string dir_ = std::string(testing::shared_traces_dir()) + "/azure_llm_2023";
};

// The files hold 19,367 and 8,820 lines: a header, then one request a line, the last line without
// a newline (so `wc -l` shows one line fewer).
TEST_F(RealAzureTrace, ConversationTraceHas19366Requests) {
  const std::string path = path_of("conv");
  const auto start = std::chrono::steady_clock::now();
  const Trace t = read_trace(path);
  const double read_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("read_ms", std::to_string(read_ms));
  expect_hour_long_sorted_trace(t, 19'366);
  // First rows: 18:15:46.6805900,374,44 then 18:15:50.9951690,396,109.
  EXPECT_EQ(t.requests[0].input_tokens, 374);
  EXPECT_EQ(t.requests[0].output_tokens, 44);
  EXPECT_EQ(t.requests[1].arrival_us, 4'314'579);
  EXPECT_EQ(t.requests[1].input_tokens, 396);
  EXPECT_EQ(t.requests[1].output_tokens, 109);
}

TEST_F(RealAzureTrace, CodeTraceHas8819Requests) {
  const std::string path = path_of("code");
  const Trace t = read_trace(path, "azure");
  expect_hour_long_sorted_trace(t, 8'819);
  // Last row: 19:14:19.9280160,549,173.
  EXPECT_EQ(t.requests.back().input_tokens, 549);
  EXPECT_EQ(t.requests.back().output_tokens, 173);
  // First rows: 18:17:03.9799600,4808,10 then 18:17:04.0319600,3180,8.
  EXPECT_EQ(t.requests[1].arrival_us, 52'000);
  EXPECT_EQ(t.requests[1].input_tokens, 3180);
}

}  // namespace
}  // namespace twinfer
