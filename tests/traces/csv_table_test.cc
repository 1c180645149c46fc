#include "traces/csv_table.h"

#include <gtest/gtest.h>

#include "tests/traces/trace_test_files.h"

namespace twinfer {
namespace {

using testing::error_of;

const std::string kPath = "t.csv";

std::vector<std::string> split(std::string_view line) {
  std::vector<CsvField> fields;
  split_csv_line(line, fields, LineLocation{&kPath, 3});
  std::vector<std::string> values;
  for (const auto& f : fields) values.push_back(f.value());
  return values;
}

TEST(SplitCsvLine, TrimsUnquotedFieldsAndKeepsEmptyOnes) {
  EXPECT_EQ(split(" a , b,,c "), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(split(""), (std::vector<std::string>{""}));
  EXPECT_EQ(split("x,"), (std::vector<std::string>{"x", ""}));
}

TEST(SplitCsvLine, QuotedFieldsHoldCommasAndDoubledQuotes) {
  EXPECT_EQ(split(R"("a,b","say ""hi""", " c ")"), (std::vector<std::string>{"a,b", R"(say "hi")", " c "}));
}

TEST(SplitCsvLine, RejectsBrokenQuoting) {
  EXPECT_EQ(error_of([] { split(R"(a,"bc)"); }), "t.csv:3: column 2: unterminated quote");
  EXPECT_EQ(error_of([] { split(R"("a"b,c)"); }), "t.csv:3: column 1: text after a closing quote");
}

const CsvSchema kSchema{{"x", "y", "z"}, {true, true, false}};

// Rows as "x|y|z" (z "-" when absent) with their line numbers.
std::vector<std::string> rows_of(const std::string& text) {
  std::vector<std::string> rows;
  for_each_csv_row(text, kPath, kSchema, [&](const CsvRow& row) {
    rows.push_back(std::to_string(row.at().line) + ":" + row.value(0) + "|" + row.value(1) + "|" +
                   (row.has(2) ? row.value(2) : "-") + (row.empty(2) ? "(empty)" : ""));
  });
  return rows;
}

TEST(ForEachCsvRow, MatchesColumnsByNameInAnyOrder) {
  EXPECT_EQ(rows_of("\ny,x\n1,2\n\n3,4\n"), (std::vector<std::string>{"3:2|1|-(empty)", "5:4|3|-(empty)"}));
  EXPECT_EQ(rows_of("z,x,y\n,1,2\nq,3,4"), (std::vector<std::string>{"2:1|2|(empty)", "3:3|4|q"}));
}

TEST(ForEachCsvRow, HeaderErrorsNameTheColumn) {
  EXPECT_EQ(error_of([] { rows_of("x,y,w\n1,2,3\n"); }), "t.csv:1: w: unknown column; valid columns: x, y, z");
  EXPECT_EQ(error_of([] { rows_of("x\n1\n"); }), "t.csv:1: y: missing column; required columns: x, y");
  EXPECT_EQ(error_of([] { rows_of("x,y,x\n1,2,3\n"); }), "t.csv:1: x: duplicate column");
  EXPECT_EQ(error_of([] { rows_of(""); }), "t.csv:1: header: empty file; expected a header line naming the columns");
  EXPECT_EQ(error_of([] { rows_of("\n  \n"); }),
            "t.csv:1: header: empty file; expected a header line naming the columns");
}

TEST(ForEachCsvRow, RowWidthErrorsNameLineAndColumn) {
  EXPECT_EQ(error_of([] { rows_of("x,y\n1,2\n1\n"); }),
            "t.csv:3: y: missing field (the line has 1 fields; the header has 2)");
  EXPECT_EQ(error_of([] { rows_of("x,y\n1,2,3\n"); }),
            "t.csv:2: column 3: too many fields (3; the header has 2)");
}

TEST(CsvHeaderNames, ReadsTheFirstNonBlankLine) {
  EXPECT_EQ(csv_header_names("\r\nA, B C,\"d\"\r\n1,2,3"), (std::vector<std::string>{"A", "B C", "d"}));
  EXPECT_TRUE(csv_header_names("").empty());
}

TEST(CsvEscape, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(csv_escape("plain"), "plain");
  EXPECT_EQ(csv_escape("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_escape("say \"x\""), "\"say \"\"x\"\"\"");
  EXPECT_EQ(csv_escape(" edge"), "\" edge\"");
  EXPECT_EQ(split(csv_escape("a,\"b\" ") + "," + csv_escape("c")), (std::vector<std::string>{"a,\"b\" ", "c"}));
}

}  // namespace
}  // namespace twinfer
