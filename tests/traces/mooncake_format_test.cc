#include <gtest/gtest.h>

#include "tests/traces/trace_test_files.h"
#include "traces/trace.h"

namespace twinfer {
namespace {

using testing::error_of;
using testing::fixture_path;
using testing::write_temp_file;

TEST(MooncakeTrace, ReadsMillisecondsAndMapsTheFirstHashIdToTheSession) {
  const Trace t = read_trace(fixture_path("mooncake_good.jsonl"), "mooncake");
  ASSERT_EQ(t.requests.size(), 3u);
  const TimeUs expected_arrival_us[] = {0, 482'000, 3'000'500};
  const std::int32_t expected_input[] = {10, 6955, 8};
  const std::int32_t expected_output[] = {1, 52, 2};
  const char* expected_session[] = {"", "h46", "h7"};
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(t.requests[i].id, i);
    EXPECT_EQ(t.requests[i].arrival_us, expected_arrival_us[i]);
    EXPECT_EQ(t.requests[i].input_tokens, expected_input[i]);
    EXPECT_EQ(t.requests[i].output_tokens, expected_output[i]);
    EXPECT_EQ(t.requests[i].session, expected_session[i]);
    EXPECT_EQ(t.requests[i].model, "");
  }
}

TEST(MooncakeTrace, HashIdsAreOptional) {
  const std::string path = write_temp_file("t.jsonl", R"({"timestamp": 5, "input_length": 1, "output_length": 2})");
  const Trace t = read_trace(path, "mooncake");
  ASSERT_EQ(t.requests.size(), 1u);
  EXPECT_EQ(t.requests[0].session, "");
  EXPECT_EQ(t.requests[0].output_tokens, 2);
}

std::string mooncake_error(const std::string& second_line) {
  const std::string path = write_temp_file(
      "t.jsonl", R"({"timestamp": 0, "input_length": 1, "output_length": 1, "hash_ids": [1]})" "\n\n" + second_line);
  std::string message = error_of([&] { read_trace(path, "mooncake"); });
  if (message.compare(0, path.size(), path) == 0) message.replace(0, path.size(), "F");
  return message;
}

TEST(MooncakeTrace, MalformedLinesNameFileLineAndKey) {
  EXPECT_EQ(mooncake_error(R"({"timestamp": 1, "input_length": -5, "output_length": 1})"),
            "F:3: input_length: negative token count -5");
  EXPECT_EQ(mooncake_error(R"({"timestamp": 1, "input_length": 5})"), "F:3: output_length: missing key");
  EXPECT_EQ(mooncake_error(R"({"timestamp": 1, "input_length": 5, "output_length": 1, "hash": [1]})"),
            "F:3: hash: unknown key; valid keys: timestamp, input_length, output_length, hash_ids");
  EXPECT_EQ(mooncake_error(R"({"timestamp": "1", "input_length": 5, "output_length": 1})"),
            "F:3: timestamp: expected a number, got a string");
  EXPECT_EQ(mooncake_error(R"({"timestamp": 1, "input_length": 5, "output_length": 1, "hash_ids": 4})"),
            "F:3: hash_ids: expected an array, got a number");
  EXPECT_EQ(mooncake_error(R"({"timestamp": 1, "input_length": 5, "output_length": 1, "hash_ids": [-4]})"),
            "F:3: hash_ids: expected non-negative integer hash ids, got '-4'");
  EXPECT_EQ(mooncake_error(R"({"timestamp": 1, "input_length": 5, "output_length": 1, "hash_ids": [4)"),
            "F:3: json: expected ']' at column 71");
  EXPECT_EQ(mooncake_error(R"({"timestamp": 1, "input_length": 600, "output_length": 1, "hash_ids": [4, 5, 6]})"),
            "F:3: hash_ids: 3 hash ids for 600 input tokens in 512-token blocks (at most 2)");
  EXPECT_EQ(mooncake_error(R"({"timestamp": 1, "input_length": 5, "output_length": 1, "hash_ids": [4, "a"]})"),
            "F:3: hash_ids: expected non-negative integer hash ids, got '\"a\"'");
}

TEST(MooncakeTrace, HashIdsBecomeTheRequestsPrefixIn512TokenBlocks) {
  const std::string path = write_temp_file(
      "t.jsonl", R"({"timestamp": 0, "input_length": 1100, "output_length": 1, "hash_ids": [46, 47, 18446744073709551615]})"
                 "\n" R"({"timestamp": 1, "input_length": 10, "output_length": 1, "hash_ids": []})");
  const Trace t = read_trace(path, "mooncake");
  ASSERT_EQ(t.requests.size(), 2u);
  EXPECT_EQ(t.requests[0].prefix.block_tokens(), 512);
  EXPECT_EQ(t.requests[0].prefix.ids(), (std::vector<std::uint64_t>{46, 47, 18446744073709551615ULL}));
  EXPECT_EQ(t.requests[0].session, "h46");
  EXPECT_TRUE(t.requests[1].prefix.empty());
}

}  // namespace
}  // namespace twinfer
