#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "tests/traces/trace_test_files.h"
#include "traces/trace.h"

namespace twinfer {
namespace {

using testing::error_of;
using testing::fixture_path;
using testing::write_temp_file;

void expect_request(const Request& r, RequestId id, TimeUs arrival_us, std::int32_t in, std::int32_t out,
                    const std::string& model, int priority, TimeUs deadline_us, const std::string& session) {
  SCOPED_TRACE("request " + std::to_string(id));
  EXPECT_EQ(r.id, id);
  EXPECT_EQ(r.arrival_us, arrival_us);
  EXPECT_EQ(r.input_tokens, in);
  EXPECT_EQ(r.output_tokens, out);
  EXPECT_EQ(r.model, model);
  EXPECT_EQ(r.priority, priority);
  EXPECT_EQ(r.deadline_us, deadline_us);
  EXPECT_EQ(r.session, session);
}

TEST(NativeCsv, ReadsEveryColumnSortsStablyAndKeepsItsTimes) {
  const Trace t = read_trace(fixture_path("native_good.csv"), "native_csv");
  ASSERT_EQ(t.requests.size(), 4u);
  EXPECT_EQ(t.source, fixture_path("native_good.csv"));
  expect_request(t.requests[0], 0, 1, 7, 0, "", 0, kNever, "");
  expect_request(t.requests[1], 1, 500'000, 100, 20, "llama", 1, 750'500, "chat-1");
  expect_request(t.requests[2], 2, 500'000, 5, 6, "", 0, 1'500'000, "chat-1");
  expect_request(t.requests[3], 3, 2'000'000, 300, 40, "gpt \"x\"", -2, kNever, "a,b");
}

TEST(NativeJsonl, ReadsEveryKeySkipsBlankLinesAndSorts) {
  const Trace t = read_trace(fixture_path("native_good.jsonl"), "native_jsonl");
  ASSERT_EQ(t.requests.size(), 3u);
  expect_request(t.requests[0], 0, 123'457, 1, 1, "", 3, kNever, "");
  expect_request(t.requests[1], 1, 1'250'000, 10, 3, "m\xc3\xa9", 0, kNever, "s\"1");
  expect_request(t.requests[2], 2, 1'250'000, 0, 0, "", 0, 1'250'500, "");
}

// The error of reading `text` as the given native format from a temporary file, with the file's
// path replaced by "F".
std::string native_error(const std::string& text, const std::string& format = "native_csv") {
  const std::string path = write_temp_file(format == "native_csv" ? "t.csv" : "t.jsonl", text);
  std::string message = error_of([&] { read_trace(path, format); });
  if (message.compare(0, path.size(), path) == 0) message.replace(0, path.size(), "F");
  return message;
}

TEST(NativeCsv, MalformedLinesNameFileLineAndField) {
  const std::string header = "arrival_s,input_tokens,output_tokens\n";
  EXPECT_EQ(native_error(header + "0,1,1\n0.5,abc,1\n"), "F:3: input_tokens: not an integer: 'abc'");
  EXPECT_EQ(native_error(header + "0,1,1\n1,-4,1\n"), "F:3: input_tokens: negative token count -4");
  EXPECT_EQ(native_error(header + "0,1,1\n1,2\n"), "F:3: output_tokens: missing field (the line has 2 fields; the header has 3)");
  EXPECT_EQ(native_error(header + "0,1,1,9\n"), "F:2: column 4: too many fields (4; the header has 3)");
  EXPECT_EQ(native_error(header + "x1,1,1\n"), "F:2: arrival_s: not a number: 'x1'");
  EXPECT_EQ(native_error(header + "-1,1,1\n"), "F:2: arrival_s: negative time -1 s");
  EXPECT_EQ(native_error(header + ",1,1\n"), "F:2: arrival_s: empty field");
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,priority\n0,1,1,high\n"),
            "F:2: priority: not an integer (or out of range): 'high'");
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,deadline_ms\n0,1,1,-5\n"),
            "F:2: deadline_ms: negative time -5 ms");
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,deadline_ms\n100000000000,1,1,9200000000000000\n"),
            "F:2: deadline_ms: deadline out of range");
}

TEST(NativeCsv, HeaderProblemsNameTheColumn) {
  EXPECT_EQ(native_error("arrival_s,input_tokens\n0,1\n"),
            "F:1: output_tokens: missing column; required columns: arrival_s, input_tokens, output_tokens");
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,tenant\n0,1,1,a\n"),
            "F:1: tenant: unknown column; valid columns: arrival_s, input_tokens, output_tokens, model, priority, "
            "deadline_ms, session, hash_ids, hash_block_tokens, prompt_token_ids");
  EXPECT_EQ(native_error(""), "F:1: header: empty file; expected a header line naming the columns");
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens\n\n"), "F: no requests (native_csv trace)");
}

TEST(NativeJsonl, MalformedLinesNameFileLineAndKey) {
  const std::string good = R"({"arrival_s": 0, "input_tokens": 1, "output_tokens": 1})" "\n";
  EXPECT_EQ(native_error(good + R"({"arrival_s": 1, "input_tokens": "12", "output_tokens": 1})", "native_jsonl"),
            "F:2: input_tokens: expected a number, got a string");
  EXPECT_EQ(native_error(good + "\n" + R"({"arrival_s": 1, "input_tokens": -1, "output_tokens": 1})", "native_jsonl"),
            "F:3: input_tokens: negative token count -1");
  EXPECT_EQ(native_error(good + R"({"arrival_s": 1, "input_tokens": 1})", "native_jsonl"),
            "F:2: output_tokens: missing key");
  EXPECT_EQ(native_error(good + R"({"arrival_s": 1, "input_tokens": 1, "output_tokens": 2, "user": "u"})",
                         "native_jsonl"),
            "F:2: user: unknown key; valid keys: arrival_s, input_tokens, output_tokens, model, priority, deadline_ms, "
            "session, hash_ids, hash_block_tokens, prompt_token_ids");
  EXPECT_EQ(native_error(good + R"({"arrival_s": 1, "input_tokens": 1, "output_tokens": 2, "input_tokens": 3})",
                         "native_jsonl"),
            "F:2: input_tokens: duplicate key");
  EXPECT_EQ(native_error(good + R"({"arrival_s": 1, "input_tokens": 1, "output_tokens")", "native_jsonl"),
            "F:2: json: expected ':' at column 52");
  EXPECT_EQ(native_error(good + R"({"arrival_s": 1, "input_tokens": 1, "output_tokens": 1, "model": 5})",
                         "native_jsonl"),
            "F:2: model: expected a string, got a number");
  EXPECT_EQ(native_error("\n\n", "native_jsonl"), "F: no requests (native_jsonl trace)");
}

Trace sample_trace() {
  Trace t;
  auto add = [&](TimeUs arrival_us, std::int32_t in, std::int32_t out) -> Request& {
    Request r;
    r.id = t.requests.size();
    r.arrival_us = arrival_us;
    r.input_tokens = in;
    r.output_tokens = out;
    t.requests.push_back(r);
    return t.requests.back();
  };
  add(0, 10, 1);
  Request& b = add(1, 20, 0);
  b.model = "m, \"quoted\"";
  b.priority = -3;
  b.deadline_us = 1 + 2'500'001;  // 2500.001 ms after arrival
  Request& c = add(3'599'999'999, 2147483647, 7);
  c.session = "caf\xc3\xa9";
  c.deadline_us = 3'599'999'999;
  add(3'600'000'000, 5, 5).model = "plain";
  return t;
}

void expect_same_requests(const Trace& a, const Trace& b) {
  ASSERT_EQ(a.requests.size(), b.requests.size());
  for (std::size_t i = 0; i < a.requests.size(); ++i) {
    const Request& x = a.requests[i];
    expect_request(b.requests[i], x.id, x.arrival_us, x.input_tokens, x.output_tokens, x.model, x.priority,
                   x.deadline_us, x.session);
  }
}

TEST(NativeCsv, RoundTripsEveryField) {
  const Trace original = sample_trace();
  const std::string path = write_temp_file("round.csv", "");
  write_trace(original, path);
  expect_same_requests(original, read_trace(path));
  EXPECT_EQ(testing::read_text(path),
            "arrival_s,input_tokens,output_tokens,model,priority,deadline_ms,session\n"
            "0,10,1,,0,,\n"
            "0.000001,20,0,\"m, \"\"quoted\"\"\",-3,2500.001,\n"
            "3599.999999,2147483647,7,,0,0,caf\xc3\xa9\n"
            "3600,5,5,plain,0,,\n");
}

TEST(NativeJsonl, RoundTripsEveryField) {
  const Trace original = sample_trace();
  const std::string path = write_temp_file("round.jsonl", "");
  write_trace(original, path);
  expect_same_requests(original, read_trace(path));
}

// Writes `t` as file `name` (its extension picks the format), reads it back, and expects each
// request's prefix back; returns what it read.
Trace expect_prefixes_round_trip(const Trace& t, const char* name) {
  SCOPED_TRACE(name);
  const std::string path = write_temp_file(name, "");
  write_trace(t, path);
  Trace back = read_trace(path);
  EXPECT_EQ(back.requests.size(), t.requests.size());
  for (std::size_t i = 0; i < std::min(back.requests.size(), t.requests.size()); ++i) {
    EXPECT_EQ(back.requests[i].prefix, t.requests[i].prefix) << i;
  }
  return back;
}

TEST(NativeFormats, HashIdsRoundTripWithTheirBlockSize) {
  Trace t;
  t.requests.resize(3);
  t.requests[0].input_tokens = 40;
  t.requests[0].prefix = BlockHashes(16, {7, 8, 9});
  t.requests[1].input_tokens = 1024;
  t.requests[1].prefix = BlockHashes(512, {7, 18446744073709551615ULL});
  t.requests[2].input_tokens = 5;
  for (const char* name : {"hash.csv", "hash.jsonl"}) expect_prefixes_round_trip(t, name);
  const std::string csv = write_temp_file("hash.csv", "");
  write_trace(t, csv);
  EXPECT_EQ(testing::read_text(csv),
            "arrival_s,input_tokens,output_tokens,hash_ids,hash_block_tokens\n"
            "0,40,0,7 8 9,16\n"
            "0,1024,0,7 18446744073709551615,512\n"
            "0,5,0,,\n");
}

TEST(NativeFormats, TurnsOfASessionShareOneArrayOfIdsAndReadBackTheIdsWritten) {
  // A turn repeats the previous one's ids but its last (a partial block that grew), then adds its
  // own; or repeats a prefix; or starts over. Without a session, requests sharing a first id.
  const std::vector<std::pair<std::string, std::vector<std::uint64_t>>> rows = {
      {"a", {1, 2, 3}}, {"a", {1, 2, 4, 5}}, {"a", {1, 2}}, {"a", {1, 2, 4, 5, 6, 7}}, {"a", {1, 2, 4, 8}},
      {"a", {9}},       {"a", {9, 10}},      {"", {5, 6}},  {"", {5, 6, 7}},          {"", {5}},
      {"b", {1, 2, 3}}};
  std::string csv = "arrival_s,input_tokens,output_tokens,session,hash_ids,hash_block_tokens\n";
  for (const auto& [session, ids] : rows) {
    csv += "0,160,1," + session + ",";
    for (std::size_t i = 0; i < ids.size(); ++i) csv += (i ? " " : "") + std::to_string(ids[i]);
    csv += session == "b" ? ",8\n" : ",16\n";
  }
  const Trace t = read_trace(write_temp_file("turns.csv", csv));
  ASSERT_EQ(t.requests.size(), rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(t.requests[i].prefix.ids(), rows[i].second) << i;
  const auto shared = [&](std::size_t i, std::size_t j) { return t.requests[i].prefix.shares_ids_with(t.requests[j].prefix); };
  EXPECT_TRUE(shared(0, 1));
  EXPECT_TRUE(shared(1, 2));
  EXPECT_TRUE(shared(2, 3));
  EXPECT_TRUE(shared(3, 4)) << "all but its last id are the previous turn's";
  EXPECT_FALSE(shared(4, 5)) << "a new start";
  EXPECT_TRUE(shared(5, 6));
  EXPECT_TRUE(shared(7, 8));
  EXPECT_TRUE(shared(8, 9));
  EXPECT_FALSE(shared(0, 10)) << "another session, another block size";
}

TEST(NativeFormats, BadHashIdsNameTheField) {
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,hash_ids\n0,10,1,1 x\n"),
            "F:2: hash_ids: expected non-negative integer hash ids, got 'x'");
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,hash_ids,hash_block_tokens\n0,10,1,1 2 3 4,4\n"),
            "F:2: hash_ids: 4 hash ids for 10 input tokens in 4-token blocks (at most 3)");
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,hash_ids,hash_block_tokens\n0,10,1,1,0\n"),
            "F:2: hash_block_tokens: expected an integer >= 1, got '0'");
  EXPECT_EQ(native_error(R"({"arrival_s": 0, "input_tokens": 10, "output_tokens": 1, "hash_ids": "1 2"})", "native_jsonl"),
            "F:1: hash_ids: expected an array, got a string");
}

TEST(NativeFormats, PromptTokenIdsRoundTripAndGiveTheirBlocksHashIds) {
  Trace t;
  t.requests.resize(3);
  t.requests[0].input_tokens = 40;
  t.requests[0].prefix = BlockHashes::from_tokens(std::vector<std::int32_t>(40, 3), kTokenHashBlockTokens);
  t.requests[1].input_tokens = 3;
  t.requests[1].prefix = BlockHashes::from_tokens({0, 2147483647, 5}, 2);
  t.requests[2].input_tokens = 64;
  t.requests[2].prefix = BlockHashes(16, {7, 8});
  for (const char* name : {"tokens.csv", "tokens.jsonl"}) {
    const Trace back = expect_prefixes_round_trip(t, name);
    ASSERT_EQ(back.requests.size(), 3u);
    ASSERT_TRUE(back.requests[0].prefix.has_tokens());
    EXPECT_EQ(back.requests[0].prefix.size(), 2u);
    EXPECT_FALSE(back.requests[2].prefix.has_tokens());
  }
  const std::string jsonl = write_temp_file("tokens.jsonl", "");
  write_trace(t, jsonl);
  const std::string text = testing::read_text(jsonl);
  EXPECT_NE(text.find(R"("input_tokens": 3, "output_tokens": 0, "prompt_token_ids": [0, 2147483647, 5], "hash_block_tokens": 2})"),
            std::string::npos)
      << text;
  // Read from a hand-written line: hashed in 16-token blocks unless told otherwise.
  const Trace read = read_trace(write_temp_file("hand.jsonl",
                                                R"({"arrival_s": 0, "input_tokens": 17, "output_tokens": 1, "prompt_token_ids": [)"
                                                "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}\n"));
  ASSERT_EQ(read.requests.size(), 1u);
  EXPECT_EQ(read.requests[0].prefix.block_tokens(), 16);
  EXPECT_EQ(read.requests[0].prefix.size(), 1u);
}

TEST(NativeFormats, BadPromptTokenIdsNameTheField) {
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,prompt_token_ids\n0,3,1,1 -2 3\n"),
            "F:2: prompt_token_ids: expected non-negative integer token ids (below 2^31), got '-2'");
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,prompt_token_ids\n0,3,1,1 2147483648 3\n"),
            "F:2: prompt_token_ids: expected non-negative integer token ids (below 2^31), got '2147483648'");
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,prompt_token_ids\n0,4,1,1 2 3\n"),
            "F:2: prompt_token_ids: 3 token ids for input_tokens 4");
  EXPECT_EQ(native_error("arrival_s,input_tokens,output_tokens,hash_ids,prompt_token_ids\n0,3,1,9,1 2 3\n"),
            "F:2: prompt_token_ids: give a prompt's hash_ids or its token ids, not both");
  EXPECT_EQ(native_error(R"({"arrival_s": 0, "input_tokens": 2, "output_tokens": 1, "prompt_token_ids": [1, 2.5]})",
                         "native_jsonl"),
            "F:1: prompt_token_ids: expected non-negative integer token ids (below 2^31), got '2.5'");
}

TEST(NativeCsv, WritesOnlyTheColumnsInUse) {
  Trace t;
  t.requests.resize(2);
  t.requests[1].arrival_us = 1'500'000;
  t.requests[1].input_tokens = 3;
  const std::string path = write_temp_file("plain.csv", "");
  write_trace(t, path);
  EXPECT_EQ(testing::read_text(path), "arrival_s,input_tokens,output_tokens\n0,0,0\n1.5,3,0\n");
}

TEST(WriteTrace, RejectsWhatCannotBeReadBack) {
  Trace t;
  t.requests.resize(1);
  t.requests[0].session = "two\nlines";
  EXPECT_EQ(error_of([&] { write_trace(t, write_temp_file("bad.csv", "")); }),
            "write_trace: request 0: session holds a line break");
  t.requests[0].session = {};
  t.requests[0].arrival_us = 10;
  t.requests[0].deadline_us = 5;
  EXPECT_EQ(error_of([&] { write_trace(t, write_temp_file("bad.jsonl", "")); }),
            "write_trace: request 0: deadline before its arrival");
  const std::string odd = write_temp_file("trace.txt", "");
  EXPECT_EQ(error_of([&] { write_trace(t, odd); }),
            odd + ": cannot tell the trace format to write; use a .csv or .jsonl extension");
}

}  // namespace
}  // namespace twinfer
