#include "traces/json_line.h"

#include <gtest/gtest.h>

#include "tests/traces/trace_test_files.h"

namespace twinfer {
namespace {

using testing::error_of;

const std::string kPath = "t.jsonl";
const LineLocation kAt{&kPath, 4};

std::vector<JsonMember> scan(std::string_view line) {
  std::vector<JsonMember> members;
  scan_json_object(line, members, kAt);
  return members;
}

TEST(ScanJsonObject, SplitsMembersOfEveryKind) {
  const auto m = scan(R"( {"a": -1.5e+3, "b":"x\"y", "c": [1, [2], {"d": "]"}], "e": {"f": null}, "g": true, "h": null} )");
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0].key, "a");
  EXPECT_EQ(m[0].kind, JsonKind::kNumber);
  EXPECT_EQ(m[0].raw, "-1.5e+3");
  EXPECT_EQ(m[1].kind, JsonKind::kString);
  EXPECT_EQ(m[1].raw, R"(x\"y)");
  EXPECT_TRUE(m[1].has_escapes);
  EXPECT_EQ(json_string_value(m[1], kAt), "x\"y");
  EXPECT_EQ(m[2].kind, JsonKind::kArray);
  EXPECT_EQ(m[2].raw, R"([1, [2], {"d": "]"}])");
  EXPECT_EQ(m[3].kind, JsonKind::kObject);
  EXPECT_EQ(m[4].kind, JsonKind::kBool);
  EXPECT_EQ(m[5].kind, JsonKind::kNull);
}

TEST(ScanJsonObject, EmptyObjectHasNoMembers) { EXPECT_TRUE(scan("{}").empty()); }

TEST(ScanJsonObject, DecodesUnicodeEscapes) {
  const auto m = scan(R"({"k": "caf\u00e9"})");
  EXPECT_EQ(json_string_value(m[0], kAt), "caf\xc3\xa9");
}

TEST(ScanJsonObject, SyntaxErrorsNameLocationAndColumn) {
  EXPECT_EQ(error_of([] { scan(R"({"a": 1,})"); }), "t.jsonl:4: json: expected '\"' at column 9");
  EXPECT_EQ(error_of([] { scan(R"({"a": 01})"); }), "t.jsonl:4: json: expected '}' at column 8");
  EXPECT_EQ(error_of([] { scan(R"({"a": 1} x)"); }), "t.jsonl:4: json: unexpected text after the object at column 10");
  EXPECT_EQ(error_of([] { scan(R"({"a": "b)"); }), "t.jsonl:4: json: unterminated string at column 9");
  EXPECT_EQ(error_of([] { scan(R"({"a": nan})"); }), "t.jsonl:4: json: expected a value at column 7");
  EXPECT_EQ(error_of([] { scan(R"({"a": 1.})"); }), "t.jsonl:4: json: bad number at column 9");
  EXPECT_EQ(error_of([] { scan(R"([1])"); }), "t.jsonl:4: json: expected '{' at column 1");
  EXPECT_EQ(error_of([] { scan(R"({"a": [1, 2)"); }), "t.jsonl:4: json: expected ']' at column 12");
}

TEST(ScanJsonObject, RefusesNestingDeeperThan64LevelsWithoutOverflowingTheStack) {
  // 63 arrays inside the object: 64 levels, accepted.
  const std::string ok = "{\"a\": " + std::string(63, '[') + std::string(63, ']') + "}";
  EXPECT_EQ(scan(ok).size(), 1u);
  const std::string deep = "{\"a\": " + std::string(64, '[') + std::string(64, ']') + "}";
  EXPECT_EQ(error_of([&] { scan(deep); }), "t.jsonl:4: json: nesting deeper than 64 levels at column 70");
  // An unterminated line of 60,000 brackets fails the same way instead of crashing.
  const std::string bomb = "{\"a\": " + std::string(60000, '[');
  EXPECT_EQ(error_of([&] { scan(bomb); }), "t.jsonl:4: json: nesting deeper than 64 levels at column 70");
}

TEST(JsonStringValue, BadEscapeNamesTheKey) {
  const auto m = scan(R"({"name": "a\qb"})");
  EXPECT_EQ(error_of([&] { json_string_value(m[0], kAt); }), "t.jsonl:4: name: bad escape in string");
}

TEST(JsonFirstElement, SkipsNestedCommas) {
  EXPECT_EQ(json_first_element(scan(R"({"a": [46, 47]})")[0]), "46");
  EXPECT_EQ(json_first_element(scan(R"({"a": [ ["x,", 1], 2]})")[0]), R"(["x,", 1])");
  EXPECT_EQ(json_first_element(scan(R"({"a": [ ]})")[0]), "");
}

}  // namespace
}  // namespace twinfer
