#include <gtest/gtest.h>

#include "tests/traces/trace_test_files.h"
#include "traces/trace.h"
#include "traces/trace_formats.h"

namespace twinfer {
namespace {

using testing::error_of;
using testing::fixture_path;
using testing::write_temp_file;

TEST(DetectTraceFormat, ByExtensionAndFirstLine) {
  EXPECT_EQ(detect_trace_format("x.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n"), "azure");
  EXPECT_EQ(detect_trace_format("x.CSV", "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"),
            "burstgpt");
  EXPECT_EQ(detect_trace_format("x.csv", "arrival_s,input_tokens,output_tokens\n"), "native_csv");
  EXPECT_EQ(detect_trace_format("x.csv", ""), "native_csv");
  EXPECT_EQ(detect_trace_format("x.jsonl", "\n{\"timestamp\": 1, \"input_length\": 2}\n"), "mooncake");
  EXPECT_EQ(detect_trace_format("x.jsonl", "{\"arrival_s\": 1}\n"), "native_jsonl");
  EXPECT_EQ(detect_trace_format("x.jsonl", "{broken\n"), "native_jsonl");
  // Without a known extension, a first line starting with '{' means JSONL.
  EXPECT_EQ(detect_trace_format("trace", "{\"timestamp\": 1, \"input_length\": 2}"), "mooncake");
  EXPECT_EQ(detect_trace_format("dir.v2/trace.txt", "TIMESTAMP,ContextTokens,GeneratedTokens"), "azure");
}

TEST(ReadTrace, AutoReadsEveryFixtureInItsFormat) {
  struct Case {
    const char* file;
    std::size_t requests;
    TimeUs last_arrival_us;
  };
  for (const Case& c : {Case{"native_good.csv", 4, 2'000'000}, Case{"native_good.jsonl", 3, 1'250'000},
                        Case{"azure_good.csv", 4, 2'500'001}, Case{"burstgpt_good.csv", 3, 41'500'000},
                        Case{"mooncake_good.jsonl", 3, 3'000'500}}) {
    SCOPED_TRACE(c.file);
    const Trace t = read_trace(fixture_path(c.file));
    ASSERT_EQ(t.requests.size(), c.requests);
    EXPECT_EQ(t.requests.back().arrival_us, c.last_arrival_us);
    EXPECT_EQ(t.requests.back().id, c.requests - 1);
  }
}

TEST(ReadTrace, NativeChoosesCsvOrJsonlByExtension) {
  EXPECT_EQ(read_trace(fixture_path("native_good.csv"), "native").requests.size(), 4u);
  EXPECT_EQ(read_trace(fixture_path("native_good.jsonl"), "native").requests.size(), 3u);
}

TEST(ReadTrace, MissingFileNamesThePath) {
  const std::string message = error_of([] { read_trace("/nonexistent/trace.csv"); });
  EXPECT_EQ(message.rfind("/nonexistent/trace.csv: cannot open trace file", 0), 0u) << message;
}

TEST(ReadTrace, UnknownFormatListsTheValidOnes) {
  EXPECT_EQ(error_of([] { read_trace(fixture_path("native_good.csv"), "parquet"); }),
            "unknown trace format 'parquet'; valid formats: auto, native, native_csv, native_jsonl, azure, burstgpt, "
            "mooncake");
}

TEST(ReadTrace, WrongExplicitFormatFailsOnTheHeader) {
  const std::string path = fixture_path("azure_good.csv");
  EXPECT_EQ(error_of([&] { read_trace(path, "native_csv"); }),
            path + ":1: TIMESTAMP: unknown column; valid columns: arrival_s, input_tokens, output_tokens, model, "
                   "priority, deadline_ms, session");
}

TEST(ReadTrace, EqualArrivalsKeepFileOrderAndAbsoluteTimesStartAtZero) {
  const std::string path = write_temp_file(
      "t.jsonl",
      "{\"timestamp\": 9000, \"input_length\": 3, \"output_length\": 1}\n"
      "{\"timestamp\": 5000, \"input_length\": 1, \"output_length\": 1}\n"
      "{\"timestamp\": 9000, \"input_length\": 4, \"output_length\": 1}\n"
      "{\"timestamp\": 5000, \"input_length\": 2, \"output_length\": 1}\n");
  const Trace t = read_trace(path);
  ASSERT_EQ(t.requests.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(t.requests[i].id, i);
    EXPECT_EQ(t.requests[i].input_tokens, static_cast<std::int32_t>(i + 1));
    EXPECT_EQ(t.requests[i].arrival_us, i < 2 ? 0 : 4'000'000);
  }
}

TEST(ReadTrace, SkipsAUtf8ByteOrderMark) {
  const std::string path = write_temp_file("bom.csv", "\xEF\xBB\xBFTIMESTAMP,ContextTokens,GeneratedTokens\n"
                                                      "2023-11-16 18:17:03.9799600,4808,10\n");
  const Trace t = read_trace(path);
  ASSERT_EQ(t.requests.size(), 1u);
  EXPECT_EQ(t.requests[0].input_tokens, 4808);
}

TEST(ReadTrace, AnErrorOnTheLastLineReturnsNothing) {
  const std::string path = write_temp_file("t.csv", "arrival_s,input_tokens,output_tokens\n0,1,1\n1,1,1\n2,1,oops\n");
  EXPECT_EQ(error_of([&] { read_trace(path); }), path + ":4: output_tokens: not an integer: 'oops'");
}

TEST(ReadTraceText, ReadsFromMemoryLikeAFileOfThatPath) {
  const Trace t = read_trace_text("\xEF\xBB\xBF{\"timestamp\": 2000, \"input_length\": 5, \"output_length\": 1}\n"
                                  "{\"timestamp\": 500, \"input_length\": 7, \"output_length\": 2}\n",
                                  "mem.jsonl");
  EXPECT_EQ(t.source, "mem.jsonl");
  ASSERT_EQ(t.requests.size(), 2u);  // mooncake: sorted, absolute times rebased to 0
  EXPECT_EQ(t.requests[0].input_tokens, 7);
  EXPECT_EQ(t.requests[0].arrival_us, 0);
  EXPECT_EQ(t.requests[1].arrival_us, 1'500'000);
  EXPECT_EQ(error_of([] { read_trace_text("arrival_s,input_tokens,output_tokens\n", "mem.csv"); }),
            "mem.csv: no requests (native_csv trace)");
}

TEST(BundledDefaultTrace, ReadsCleanlyAsAboutAMinuteOfConversation) {
  const Trace t = read_trace(std::string(TWINFER_SOURCE_DIR) + "/traces/data/default_trace.csv");
  ASSERT_EQ(t.requests.size(), 2000u);
  EXPECT_EQ(t.requests.front().arrival_us, 0);
  EXPECT_GT(t.requests.back().arrival_us, 50 * kUsPerS);
  EXPECT_LT(t.requests.back().arrival_us, 70 * kUsPerS);
  double input_sum = 0, output_sum = 0;
  for (const Request& r : t.requests) {
    input_sum += r.input_tokens;
    output_sum += r.output_tokens;
    ASSERT_GE(r.input_tokens, 1);
    ASSERT_GE(r.output_tokens, 1);
  }
  // Lognormal lengths with sigma 1 have a heavy tail: allow 15% around the spec's means.
  EXPECT_NEAR(input_sum / 2000, 800, 120);
  EXPECT_NEAR(output_sum / 2000, 200, 30);
}

}  // namespace
}  // namespace twinfer
