#include <gtest/gtest.h>

#include "tests/traces/trace_test_files.h"
#include "traces/trace.h"

namespace twinfer {
namespace {

using testing::error_of;
using testing::fixture_path;
using testing::write_temp_file;

TEST(BurstGptTrace, ReadsModelsKeepsFailuresAndStartsAtZero) {
  const Trace t = read_trace(fixture_path("burstgpt_good.csv"), "burstgpt");
  ASSERT_EQ(t.requests.size(), 3u);
  const TimeUs expected_arrival_us[] = {0, 1'500'000, 41'500'000};
  const char* expected_model[] = {"GPT-4", "ChatGPT", "ChatGPT"};
  const std::int32_t expected_input[] = {417, 472, 1087};
  const std::int32_t expected_output[] = {276, 18, 0};  // the 0 is a failed request, kept
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(t.requests[i].id, i);
    EXPECT_EQ(t.requests[i].arrival_us, expected_arrival_us[i]);
    EXPECT_EQ(t.requests[i].model, expected_model[i]);
    EXPECT_EQ(t.requests[i].input_tokens, expected_input[i]);
    EXPECT_EQ(t.requests[i].output_tokens, expected_output[i]);
  }
}

TEST(BurstGptTrace, MalformedRowsNameFileLineAndField) {
  const std::string header = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n";
  const std::string p1 = write_temp_file("1.csv", header + "5,ChatGPT,-1,18,17,Conversation log\n");
  EXPECT_EQ(error_of([&] { read_trace(p1, "burstgpt"); }), p1 + ":2: Request tokens: negative token count -1");
  const std::string p2 = write_temp_file("2.csv", header + "5,ChatGPT,1,1,2,API log\nsoon,ChatGPT,1,1,2,API log\n");
  EXPECT_EQ(error_of([&] { read_trace(p2, "burstgpt"); }), p2 + ":3: Timestamp: not a number: 'soon'");
  const std::string p3 = write_temp_file("3.csv", "Timestamp,Model,Request tokens\n5,ChatGPT,1\n");
  EXPECT_EQ(error_of([&] { read_trace(p3, "burstgpt"); }),
            p3 + ":1: Response tokens: missing column; required columns: Timestamp, Model, Request tokens, "
                 "Response tokens");
  const std::string p4 = write_temp_file("4.csv", header + "5,ChatGPT,1,1,2,API log,extra\n");
  EXPECT_EQ(error_of([&] { read_trace(p4, "burstgpt"); }), p4 + ":2: column 7: too many fields (7; the header has 6)");
}

TEST(BurstGptTrace, OptionalColumnsMayBeLeftOut) {
  const std::string path = write_temp_file("min.csv", "Model,Timestamp,Response tokens,Request tokens\nGPT-4,2,3,4\n");
  const Trace t = read_trace(path, "burstgpt");
  ASSERT_EQ(t.requests.size(), 1u);
  EXPECT_EQ(t.requests[0].arrival_us, 0);
  EXPECT_EQ(t.requests[0].input_tokens, 4);
  EXPECT_EQ(t.requests[0].output_tokens, 3);
}

}  // namespace
}  // namespace twinfer
