#include "core/shared_string.h"

#include <sstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace twinfer {
namespace {

TEST(SharedString, ReadsAndComparesLikeTheStringItHolds) {
  SharedString s = "llama-3-8b";
  EXPECT_EQ(s.str(), "llama-3-8b");
  EXPECT_EQ(s.size(), 10u);
  EXPECT_FALSE(s.empty());
  EXPECT_TRUE(s == "llama-3-8b");
  EXPECT_TRUE(s == std::string("llama-3-8b"));
  EXPECT_TRUE(std::string("llama-3-8b") == s);
  EXPECT_TRUE(s != "llama-3-70b");
  EXPECT_TRUE(SharedString("a") < SharedString("b"));
  const std::string& as_string = s;  // passes where a const std::string& is expected
  EXPECT_EQ(as_string, "llama-3-8b");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "llama-3-8b");
}

TEST(SharedString, TheEmptyStringHoldsNothingAndEqualsEveryOtherEmptyOne) {
  SharedString none;
  SharedString from_empty = std::string();
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(from_empty.empty());
  EXPECT_EQ(none.str(), "");
  EXPECT_EQ(none, from_empty);
  EXPECT_NE(none, SharedString("x"));
}

TEST(SharedString, CopiesShareTheTextAndOutliveTheOriginal) {
  SharedString copy;
  {
    SharedString original = std::string(100, 'q');
    copy = original;
    EXPECT_EQ(&copy.str(), &original.str());  // one text, two handles
    SharedString moved = std::move(original);
    EXPECT_TRUE(original.empty());  // NOLINT(bugprone-use-after-move): a moved-from handle holds nothing
    EXPECT_EQ(&moved.str(), &copy.str());
  }
  EXPECT_EQ(copy.str(), std::string(100, 'q'));
  copy = copy;  // self-assignment keeps the text
  EXPECT_EQ(copy.size(), 100u);
}

TEST(SharedStrings, GivesOneTextPerDistinctName) {
  SharedStrings names;
  SharedString a = names("session-1");
  SharedString b = names(std::string("session-1"));
  SharedString c = names("session-2");
  EXPECT_EQ(&a.str(), &b.str());
  EXPECT_NE(&a.str(), &c.str());
  EXPECT_TRUE(names("").empty());
}

TEST(SharedString, CopiesOnManyThreadsKeepTheCountRight) {
  SharedString shared = "model-name-longer-than-the-small-string-buffer";
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&shared] {
      for (int i = 0; i < 20000; ++i) {
        SharedString copy = shared;
        SharedString other = std::move(copy);
        if (other.size() != shared.size()) std::abort();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(shared.str(), "model-name-longer-than-the-small-string-buffer");
}

}  // namespace
}  // namespace twinfer
