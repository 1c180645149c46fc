#include "runtime/cpu/paged_kv_cache.h"

#include <vector>

#include <gtest/gtest.h>

namespace twinfer::runtime {
namespace {

std::vector<std::int32_t> chain(const PagedKvCache& cache, RequestId id) {
  std::vector<std::int32_t> blocks;
  for (std::int32_t b = cache.first_block(id); b >= 0; b = cache.next_block(b)) blocks.push_back(b);
  return blocks;
}

TEST(PagedKvCacheTest, AppendTakesBlocksAsTheSequenceGrows) {
  PagedKvCache cache(/*blocks=*/4, /*block_tokens=*/4, /*layers=*/2, /*kv_dim=*/8);
  EXPECT_EQ(cache.blocks_needed(1, 5), 2);
  std::int32_t block[16], offset[16];
  cache.append(1, 5, block, offset);
  EXPECT_EQ(cache.length(1), 5);
  EXPECT_EQ(cache.blocks_used(), 2);
  EXPECT_EQ(chain(cache, 1), (std::vector<std::int32_t>{0, 1}));
  EXPECT_EQ(std::vector<std::int32_t>(block, block + 5), (std::vector<std::int32_t>{0, 0, 0, 0, 1}));
  EXPECT_EQ(std::vector<std::int32_t>(offset, offset + 5), (std::vector<std::int32_t>{0, 1, 2, 3, 0}));
  EXPECT_EQ(cache.blocks_needed(1, 3), 0);  // fills block 1
  EXPECT_EQ(cache.blocks_needed(1, 4), 1);
  cache.append(1, 3, block, offset);
  EXPECT_EQ(block[2], 1);
  EXPECT_EQ(offset[2], 3);
  EXPECT_EQ(cache.blocks_used(), 2);
}

TEST(PagedKvCacheTest, ReleaseReturnsBlocksForReuse) {
  PagedKvCache cache(4, 4, 1, 2);
  std::int32_t block[16], offset[16];
  cache.append(1, 8, block, offset);
  cache.append(2, 1, block, offset);
  EXPECT_EQ(cache.free_blocks(), 1);
  cache.release(1);
  cache.release(99);  // unknown: no-op
  EXPECT_EQ(cache.blocks_used(), 1);
  EXPECT_EQ(cache.length(1), 0);
  EXPECT_EQ(cache.first_block(1), -1);
  cache.append(3, 12, block, offset);
  EXPECT_EQ(cache.blocks_used(), 4);
  EXPECT_EQ(chain(cache, 3).size(), 3u);
  EXPECT_EQ(chain(cache, 2), (std::vector<std::int32_t>{2}));
}

TEST(PagedKvCacheTest, KeysAndValuesOfEachLayerAreDisjoint) {
  PagedKvCache cache(2, 4, 2, 8);
  // [layer][K or V][block_tokens][kv_dim]: 32 floats per (layer, kind), 128 per block.
  EXPECT_EQ(cache.values(0, 0) - cache.keys(0, 0), 32);
  EXPECT_EQ(cache.keys(0, 1) - cache.keys(0, 0), 64);
  EXPECT_EQ(cache.keys(1, 0) - cache.keys(0, 0), 128);
}

}  // namespace
}  // namespace twinfer::runtime
