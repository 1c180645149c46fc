#include "traces/text_input.h"

#include <gtest/gtest.h>

#include "tests/traces/trace_test_files.h"

namespace twinfer {
namespace {

using testing::error_of;

const std::string kPath = "t.csv";
const LineLocation kAt{&kPath, 7};

TEST(LineCursor, SplitsLfAndCrlfAndKeepsALastLineWithoutNewline) {
  LineCursor cursor("a\r\nb\n\nc");
  std::string_view line;
  ASSERT_TRUE(cursor.next(line));
  EXPECT_EQ(line, "a");
  ASSERT_TRUE(cursor.next(line));
  EXPECT_EQ(line, "b");
  ASSERT_TRUE(cursor.next(line));
  EXPECT_EQ(line, "");
  ASSERT_TRUE(cursor.next(line));
  EXPECT_EQ(line, "c");
  EXPECT_EQ(cursor.line_number(), 4u);
  EXPECT_FALSE(cursor.next(line));
}

TEST(LineCursor, EmptyTextHasNoLines) {
  LineCursor cursor("");
  std::string_view line;
  EXPECT_FALSE(cursor.next(line));
}

TEST(ParseTokenCount, AcceptsIntegersAndIntegralDecimals) {
  EXPECT_EQ(parse_token_count(" 42 ", "n", kAt), 42);
  EXPECT_EQ(parse_token_count("0", "n", kAt), 0);
  EXPECT_EQ(parse_token_count("12.0", "n", kAt), 12);
  EXPECT_EQ(parse_token_count("2147483647", "n", kAt), 2147483647);
}

TEST(ParseTokenCount, RejectsWithLocationAndField) {
  EXPECT_EQ(error_of([] { parse_token_count("-3", "input_tokens", kAt); }),
            "t.csv:7: input_tokens: negative token count -3");
  EXPECT_EQ(error_of([] { parse_token_count("12x", "input_tokens", kAt); }),
            "t.csv:7: input_tokens: not an integer: '12x'");
  EXPECT_EQ(error_of([] { parse_token_count("", "n", kAt); }), "t.csv:7: n: not an integer: ''");
  EXPECT_EQ(error_of([] { parse_token_count("1.5", "n", kAt); }), "t.csv:7: n: not an integer: '1.5'");
  EXPECT_EQ(error_of([] { parse_token_count("2147483648", "n", kAt); }),
            "t.csv:7: n: token count out of range: 2147483648");
  EXPECT_EQ(error_of([] { parse_token_count("+5", "n", kAt); }), "t.csv:7: n: not an integer: '+5'");
}

TEST(ParseInt, AcceptsNegativeAndRejectsFractions) {
  EXPECT_EQ(parse_int("-2", "priority", kAt), -2);
  EXPECT_EQ(error_of([] { parse_int("1.5", "priority", kAt); }),
            "t.csv:7: priority: not an integer (or out of range): '1.5'");
}

TEST(ParseReal, RejectsNonFiniteAndGarbage) {
  EXPECT_DOUBLE_EQ(parse_real("2.5e-1", "x", kAt), 0.25);
  EXPECT_NE(error_of([] { parse_real("nan", "x", kAt); }).find("t.csv:7: x: not a number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_real("inf", "x", kAt); }).find("t.csv:7: x: not a number"), std::string::npos);
  EXPECT_NE(error_of([] { parse_real("1,5", "x", kAt); }).find("t.csv:7: x: not a number"), std::string::npos);
}

TEST(ParseSecondsAsUs, ConvertsToTheNearestMicrosecond) {
  EXPECT_EQ(parse_seconds_as_us("3", "arrival_s", kAt), 3'000'000);
  EXPECT_EQ(parse_seconds_as_us("0.000001", "arrival_s", kAt), 1);
  EXPECT_EQ(parse_seconds_as_us("3599.999999", "arrival_s", kAt), 3'599'999'999);
  EXPECT_EQ(parse_seconds_as_us("1.0000007", "arrival_s", kAt), 1'000'001);
  EXPECT_EQ(parse_seconds_as_us("1e-3", "arrival_s", kAt), 1000);
}

TEST(ParseSecondsAsUs, RejectsNegativeAndHugeTimes) {
  EXPECT_EQ(error_of([] { parse_seconds_as_us("-1", "arrival_s", kAt); }), "t.csv:7: arrival_s: negative time -1 s");
  EXPECT_EQ(error_of([] { parse_seconds_as_us("-0.5", "arrival_s", kAt); }),
            "t.csv:7: arrival_s: negative time -0.5 s");
  EXPECT_EQ(error_of([] { parse_seconds_as_us("1e20", "arrival_s", kAt); }),
            "t.csv:7: arrival_s: time out of range: 1e20");
}

TEST(ParseMsAsUs, IntegersAreExactAndFractionsRound) {
  EXPECT_EQ(parse_ms_as_us("27482", "timestamp", kAt), 27'482'000);
  EXPECT_EQ(parse_ms_as_us("0.0015", "timestamp", kAt), 2);
  EXPECT_EQ(error_of([] { parse_ms_as_us("abc", "timestamp", kAt); }), "t.csv:7: timestamp: not a number: 'abc'");
}

TEST(ReadWholeFile, ReadsBytesAndNamesAMissingPath) {
  const std::string path = testing::write_temp_file("x.txt", std::string("a\0b\r\n", 5));
  EXPECT_EQ(read_whole_file(path), std::string("a\0b\r\n", 5));
  const std::string message = error_of([] { read_whole_file("/no/such/dir/trace.csv"); });
  EXPECT_NE(message.find("/no/such/dir/trace.csv: cannot open trace file"), std::string::npos) << message;
}

// A directory once aborted the reader, and /dev/zero was read until memory ran out.
TEST(ReadWholeFile, OnlyRegularFilesAreRead) {
  EXPECT_EQ(error_of([] { read_whole_file("/tmp"); }), "/tmp: not a regular file (trace file)");
  EXPECT_EQ(error_of([] { read_whole_file("/dev/zero"); }), "/dev/zero: not a regular file (trace file)");
}

}  // namespace
}  // namespace twinfer
