#include <gtest/gtest.h>

#include "core/error.h"
#include "runtime/backend/backend.h"

namespace twinfer::runtime {
namespace {

TEST(PromptTokensTest, DeterministicAndAPrefixOfLongerPrompts) {
  const auto a = prompt_tokens(12, 50, 1000);
  EXPECT_EQ(a, prompt_tokens(12, 50, 1000));
  const auto shorter = prompt_tokens(12, 20, 1000);
  EXPECT_EQ(shorter, std::vector<std::int32_t>(a.begin(), a.begin() + 20));
  EXPECT_NE(a, prompt_tokens(13, 50, 1000));
  EXPECT_TRUE(prompt_tokens(12, 0, 1000).empty());
}

TEST(PromptTokensTest, CoversTheVocabularyEvenly) {
  std::vector<int> counts(97, 0);
  for (RequestId id = 0; id < 100; ++id)
    for (std::int32_t t : prompt_tokens(id, 97, 97)) {
      ASSERT_GE(t, 0);
      ASSERT_LT(t, 97);
      ++counts[static_cast<std::size_t>(t)];
    }
  for (int c : counts) {  // 100 expected per token; sd 10
    EXPECT_GT(c, 50);
    EXPECT_LT(c, 150);
  }
  EXPECT_EQ(prompt_tokens(3, 10, 1), std::vector<std::int32_t>(10, 0));
}

TEST(PromptTokensTest, APromptOfTokenIdsIsThoseTokens) {
  Request r;
  r.id = 4;
  r.input_tokens = 5;
  r.prefix = BlockHashes::from_tokens({9, 0, 99, 3, 3}, 2);
  EXPECT_EQ(prompt_tokens(r, 100), (std::vector<std::int32_t>{9, 0, 99, 3, 3}));
  try {
    prompt_tokens(r, 99);
    ADD_FAILURE() << "a token id outside the vocabulary should throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "prompt_tokens: request 4: token id 99 is outside the vocabulary of 99 tokens");
  }
  r.input_tokens = 6;
  EXPECT_THROW(prompt_tokens(r, 100), Error);
}

TEST(PromptTokensTest, RejectsBadArguments) {
  EXPECT_THROW(prompt_tokens(1, 5, 0), Error);
  EXPECT_THROW(prompt_tokens(1, -1, 10), Error);
}

}  // namespace
}  // namespace twinfer::runtime
