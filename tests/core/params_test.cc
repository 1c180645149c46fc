#include "core/params.h"

#include <cstdint>

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using nlohmann::json;

// Integers are checked before they are narrowed: a value past the type's range, or not whole, is an
// error naming the key, never a wrapped or truncated number.
TEST(JsonParams, IntegersAreCheckedBeforeNarrowing) {
  const json j = json::parse(R"({"ok": 7, "big": 4294967298, "huge": 1e12, "half": 2.5, "whole": 3.0,
                                 "neg": -1, "text": "3"})");
  JsonParams p(j, "x");
  int ok = 0;
  p.get("ok", ok);
  EXPECT_EQ(ok, 7);
  int whole = 0;
  p.get("whole", whole);
  EXPECT_EQ(whole, 3);
  std::int64_t big64 = 0;
  p.get("big", big64);
  EXPECT_EQ(big64, 4294967298LL);
  const auto error = [&](const char* key, auto value) {
    return testing::error_of([&] { p.get(key, value); });
  };
  EXPECT_EQ(error("big", int(0)), "x.big: expected an integer in [-2147483648, 2147483647], got 4294967298");
  EXPECT_EQ(error("huge", int(0)), "x.huge: expected an integer in [-2147483648, 2147483647], got 1000000000000.0");
  EXPECT_EQ(error("half", int(0)), "x.half: expected an integer, got 2.5");
  EXPECT_EQ(error("neg", std::uint32_t(0)), "x.neg: expected an integer in [0, 4294967295], got -1");
  EXPECT_EQ(error("text", int(0)), "x.text: expected an integer, got \"3\"");
}

}  // namespace
}  // namespace twinfer
