#include "core/block_hashes.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace twinfer {
namespace {

std::vector<std::int32_t> iota_tokens(int n, std::int32_t first) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

std::vector<std::uint64_t> keys_of(const BlockHashes& h, std::int32_t input_tokens, std::uint64_t id, int block_tokens,
                                   int n) {
  PrefixKeys keys(h, input_tokens, id, block_tokens);
  std::vector<std::uint64_t> out;
  for (int i = 0; i < n; ++i) out.push_back(keys.next());
  return out;
}

TEST(BlockHashesFromTokens, OneIdPerFullBlockChainedSoEqualIdsMeanEqualTokensSoFar) {
  const std::vector<std::int32_t> a = iota_tokens(40, 100);
  std::vector<std::int32_t> b = a;
  b[20] = 7;  // differs in the second 16-token block
  const BlockHashes ha = BlockHashes::from_tokens(a, 16), hb = BlockHashes::from_tokens(b, 16);
  ASSERT_EQ(ha.size(), 2u) << "40 tokens: two full blocks; the last 8 have no id";
  EXPECT_EQ(ha.block_tokens(), 16);
  EXPECT_EQ(ha[0], hb[0]);
  EXPECT_NE(ha[1], hb[1]);
  ASSERT_TRUE(ha.has_tokens());
  EXPECT_EQ(ha.tokens(), a);
  EXPECT_EQ(ha, BlockHashes::from_tokens(a, 16)) << "the same tokens, the same ids";
  EXPECT_NE(ha, hb);
  // The same block tokens after a different first block: the chain tells them apart.
  std::vector<std::int32_t> c = a;
  c[0] = 1;
  EXPECT_NE(BlockHashes::from_tokens(c, 16)[1], ha[1]);
  // A block's id is not its tokens' order-free sum: swapping two tokens changes it.
  std::vector<std::int32_t> d = a;
  std::swap(d[3], d[4]);
  EXPECT_NE(BlockHashes::from_tokens(d, 16)[0], ha[0]);
  // Shorter than a block: tokens, no ids, not empty. No tokens: empty.
  const BlockHashes short_prompt = BlockHashes::from_tokens(iota_tokens(5, 0), 16);
  EXPECT_FALSE(short_prompt.empty());
  EXPECT_EQ(short_prompt.size(), 0u);
  EXPECT_EQ(short_prompt.tokens().size(), 5u);
  EXPECT_TRUE(BlockHashes::from_tokens({}, 16).empty());
  // Ids of hash ids and of tokens are different prompts even with equal ids.
  EXPECT_NE(BlockHashes(16, ha.ids()), ha);
}

TEST(BlockHashesFromTokens, EngineBlocksShareExactlyTheFullBlocksOfTheCommonPrefix) {
  // Two prompts of 100 tokens sharing their first 50: engine blocks of 16 share blocks 0..2 (48
  // tokens), of 32 block 0, and of 8 (smaller than the hash block) blocks 0..5: tokens 48..55
  // differ after two equal ones.
  const std::vector<std::int32_t> a = iota_tokens(100, 0);
  std::vector<std::int32_t> b = a;
  for (std::size_t i = 50; i < b.size(); ++i) b[i] = 999;
  const BlockHashes ha = BlockHashes::from_tokens(a, 16), hb = BlockHashes::from_tokens(b, 16);
  const auto shared = [&](int engine_block, int n) {
    const auto ka = keys_of(ha, 100, 1, engine_block, n), kb = keys_of(hb, 100, 2, engine_block, n);
    int k = 0;
    while (k < n && ka[static_cast<std::size_t>(k)] == kb[static_cast<std::size_t>(k)]) ++k;
    for (int j = k; j < n; ++j) EXPECT_NE(ka[static_cast<std::size_t>(j)], kb[static_cast<std::size_t>(j)]) << j;
    return k;
  };
  EXPECT_EQ(shared(16, 7), 3);
  EXPECT_EQ(shared(32, 4), 1);
  EXPECT_EQ(shared(8, 13), 6);
  // Identical prompts share every full engine block, and no more: 100 tokens are six blocks of 16.
  const auto k1 = keys_of(ha, 100, 1, 16, 7), k2 = keys_of(BlockHashes::from_tokens(a, 16), 100, 2, 16, 7);
  for (std::size_t j = 0; j < 6; ++j) EXPECT_EQ(k1[j], k2[j]) << j;
  EXPECT_NE(k1[6], k2[6]);
}

}  // namespace
}  // namespace twinfer
