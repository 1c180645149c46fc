#include <gtest/gtest.h>

#include <string>

#include "policies/registry.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

std::string error_of(const nlohmann::json& spec, const PolicyContext& ctx = {}) {
  try {
    batcher_registry().make(spec, ctx, "policies.batcher");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(BuiltinBatchersTest, BothNamesBuild) {
  EXPECT_TRUE(batcher_registry().contains("request_level"));
  EXPECT_TRUE(batcher_registry().contains("continuous"));
  auto request_level = batcher_registry().make("request_level", {}, "b");
  EXPECT_EQ(request_level->name(), "request_level");
  EXPECT_EQ(request_level->kv_capacity().blocks_total, 0);

  auto continuous = batcher_registry().make(
      nlohmann::json{{"name", "continuous"}, {"kv_blocks", 100}, {"block_tokens", 32}}, {}, "b");
  EXPECT_EQ(continuous->name(), "continuous");
  EXPECT_EQ(continuous->kv_capacity().blocks_total, 100);
  EXPECT_EQ(continuous->kv_capacity().block_tokens, 32);
}

TEST(BuiltinBatchersTest, ContinuousDerivesItsCacheFromTheContextInstance) {
  testing::ViewBuilder views;
  views.add_worker();
  PolicyContext ctx;
  ctx.instance = &views.instance(0);
  auto b = batcher_registry().make("continuous", ctx, "b");
  EXPECT_EQ(b->kv_capacity().blocks_total, 33378);
  EXPECT_EQ(b->kv_capacity().block_tokens, 16);
  EXPECT_NE(error_of("continuous").find("policies.batcher (continuous).kv_blocks"), std::string::npos)
      << error_of("continuous");
}

TEST(BuiltinBatchersTest, UnknownKeysAndBadValuesAreRejectedByName) {
  EXPECT_NE(error_of({{"name", "request_level"}, {"max_batchsize", 4}}).find("unknown key 'max_batchsize'"),
            std::string::npos);
  EXPECT_NE(error_of({{"name", "continuous"}, {"kv_blocks", 10}, {"budget", 4}}).find("unknown key 'budget'"),
            std::string::npos);
  EXPECT_NE(error_of({{"name", "request_level"}, {"order", "lifo"}}).find(".order: unknown order 'lifo'"),
            std::string::npos);
  EXPECT_NE(error_of({{"name", "request_level"}, {"max_batch_size", 4}, {"preferred_batch_sizes", {2, 8}}})
                .find("preferred_batch_sizes"),
            std::string::npos);
  EXPECT_NE(error_of({{"name", "request_level"}, {"bucket_edges", {512, 128}}}).find("strictly increasing"),
            std::string::npos);
  EXPECT_NE(error_of({{"name", "continuous"}, {"kv_blocks", 10}, {"max_num_seqs", 64},
                      {"max_num_batched_tokens", 32}})
                .find("max_num_batched_tokens: must be >= max_num_seqs"),
            std::string::npos);
  EXPECT_NE(error_of({{"name", "continuous"}, {"kv_blocks", "many"}}).find("kv_blocks: expected an integer"),
            std::string::npos);
  EXPECT_NE(error_of("fifo").find("unknown batcher 'fifo'"), std::string::npos);
}

}  // namespace
}  // namespace twinfer
