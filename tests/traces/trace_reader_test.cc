#include <algorithm>

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
                   "priority, deadline_ms, session, hash_ids, hash_block_tokens, prompt_token_ids");
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

// Requests a streamed read hands out, as read_trace() holds them: sorted (stably) by arrival, with
// absolute clocks rebased, ids in that order.
std::vector<Request> streamed(const std::string& path, std::size_t block_bytes, std::string* format = nullptr) {
  std::vector<Request> out;
  const std::string name = for_each_request(path, "auto", [&out](const Request& r) { out.push_back(r); }, block_bytes);
  if (format) *format = name;
  std::stable_sort(out.begin(), out.end(), [](const Request& a, const Request& b) { return a.arrival_us < b.arrival_us; });
  return out;
}

TEST(ForEachRequest, StreamsEveryFormatAsReadTraceReadsItWhateverTheBlockSize) {
  for (const char* file : {"native_good.csv", "native_good.jsonl", "azure_good.csv", "burstgpt_good.csv",
                           "mooncake_good.jsonl"}) {
    const Trace whole = read_trace(fixture_path(file));
    for (std::size_t block : {std::size_t{1}, std::size_t{7}, std::size_t{64}, std::size_t{1} << 20}) {
      SCOPED_TRACE(std::string(file) + ", blocks of " + std::to_string(block) + " bytes");
      std::string format;
      const std::vector<Request> got = streamed(fixture_path(file), block, &format);
      ASSERT_EQ(got.size(), whole.requests.size());
      const bool absolute = format == "azure" || format == "burstgpt" || format == "mooncake";
      const TimeUs origin = absolute ? got.front().arrival_us : 0;
      for (std::size_t i = 0; i < got.size(); ++i) {
        const Request& a = got[i];
        const Request& b = whole.requests[i];
        EXPECT_EQ(a.arrival_us - origin, b.arrival_us) << i;
        EXPECT_EQ(a.input_tokens, b.input_tokens) << i;
        EXPECT_EQ(a.output_tokens, b.output_tokens) << i;
        EXPECT_EQ(a.priority, b.priority) << i;
        EXPECT_EQ(a.deadline_us == kNever ? kNever : a.deadline_us - origin, b.deadline_us) << i;
        EXPECT_EQ(a.model, b.model) << i;
        EXPECT_EQ(a.session, b.session) << i;
      }
    }
  }
}

TEST(ForEachRequest, LinesSplitAcrossBlocksKeepTheirNumbersInErrors) {
  std::string text = "\xEF\xBB\xBF" "arrival_s,input_tokens,output_tokens\r\n";
  for (int i = 0; i < 200; ++i) text += std::to_string(i) + ",12345,67\r\n";
  text += "\n200,1,oops\n201,1,1";  // a blank line, a bad one (line 203), an unended last one
  const std::string path = write_temp_file("stream_error.csv", text);
  const std::string expected = path + ":203: output_tokens: not an integer: 'oops'";
  EXPECT_EQ(error_of([&] { read_trace(path); }), expected);
  for (std::size_t block : {std::size_t{1}, std::size_t{5}, std::size_t{100}, std::size_t{4096}}) {
    EXPECT_EQ(error_of([&] { streamed(path, block); }), expected) << block;
  }
  const std::string good = write_temp_file("stream_good.csv", text.substr(0, text.find("\n200,")) + "\n201,1,1");
  for (std::size_t block : {std::size_t{1}, std::size_t{5}, std::size_t{100}}) {
    const std::vector<Request> got = streamed(good, block);
    ASSERT_EQ(got.size(), 201u) << block;
    EXPECT_EQ(got[199].input_tokens, 12345);
    EXPECT_EQ(got.back().arrival_us, 201 * kUsPerS);
  }
}

TEST(ForEachRequest, EmptyTracesAndBadPathsFailAsReadTraceDoes) {
  const std::string header_only = write_temp_file("stream_empty.csv", "arrival_s,input_tokens,output_tokens\n");
  EXPECT_EQ(error_of([&] { streamed(header_only, 3); }), error_of([&] { read_trace(header_only); }));
  const std::string nothing = write_temp_file("stream_nothing.csv", "\n  \n");
  EXPECT_EQ(error_of([&] { streamed(nothing, 2); }), nothing + ":1: header: empty file; expected a header line naming the columns");
  EXPECT_EQ(error_of([] { streamed("/no/such/trace.csv", 64); }), error_of([] { read_trace("/no/such/trace.csv"); }));
  EXPECT_EQ(error_of([] { for_each_request(".", "auto", [](const Request&) {}); }), ".: not a regular file (trace file)");
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
