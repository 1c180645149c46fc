#include "runtime/engine/noop_backend.h"

#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "runtime/cpu/cpu_backend.h"
#include "tests/runtime/runtime_testing.h"
#include "tests/testing.h"

namespace twinfer::runtime {
namespace {

TransformerConfig tiny_config() { return testing::tiny_transformer(256); }

BackendLimits small_limits(std::int64_t kv_blocks = 64) { return testing::small_limits(kv_blocks); }

std::vector<std::int32_t> ones(int n) { return std::vector<std::int32_t>(static_cast<std::size_t>(n), 1); }

std::string error_of(Backend& backend, const std::vector<StepSequence>& batch) {
  std::vector<std::int32_t> next;
  try {
    backend.step(batch, next);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(NoopBackend, OneTokenZeroPerSamplingSequenceInBatchOrder) {
  auto backend = make_noop_backend(tiny_config(), small_limits());
  EXPECT_EQ(backend->name(), "noop");
  std::vector<std::int32_t> next = {7, 7, 7, 7, 7};  // stale contents are replaced
  backend->step({{1, 0, ones(5), true}, {2, 0, ones(3), false}, {3, 0, ones(1), true}}, next);
  EXPECT_EQ(next, (std::vector<std::int32_t>{0, 0}));
  backend->step({{2, 3, ones(2), false}}, next);
  EXPECT_TRUE(next.empty());
  backend->step({{1, 5, {0}, true}, {2, 5, {0}, true}, {3, 1, {0}, true}}, next);
  EXPECT_EQ(next, (std::vector<std::int32_t>{0, 0, 0}));
  EXPECT_TRUE(backend->last_logits().empty());
}

TEST(NoopBackend, BlocksGrowWithTokensAcrossBlockBoundaries) {
  auto backend = make_noop_backend(tiny_config(), small_limits());
  std::vector<std::int32_t> next;
  backend->step({{4, 0, ones(15), true}}, next);
  EXPECT_EQ(backend->kv_blocks_used(), 1);  // 15 tokens
  backend->step({{4, 15, {0}, true}}, next);
  EXPECT_EQ(backend->kv_blocks_used(), 1);  // 16: the block is full
  backend->step({{4, 16, {0}, true}}, next);
  EXPECT_EQ(backend->kv_blocks_used(), 2);  // 17
  backend->step({{5, 0, ones(33), true}}, next);
  EXPECT_EQ(backend->kv_blocks_used(), 2 + 3);  // 33 tokens in blocks of 16
}

TEST(NoopBackend, ReleaseFreesTheSequencesBlocksAndForgetsItsLength) {
  auto backend = make_noop_backend(tiny_config(), small_limits());
  std::vector<std::int32_t> next;
  backend->step({{1, 0, ones(20), true}, {2, 0, ones(40), true}}, next);
  EXPECT_EQ(backend->kv_blocks_used(), 2 + 3);
  backend->release(1);
  EXPECT_EQ(backend->kv_blocks_used(), 3);
  backend->release(1);   // already gone
  backend->release(99);  // never seen
  EXPECT_EQ(backend->kv_blocks_used(), 3);
  // A released sequence starts over from 0 tokens (recompute after preemption).
  backend->step({{1, 0, ones(21), true}}, next);
  EXPECT_EQ(backend->kv_blocks_used(), 3 + 2);
  backend->release(2);
  backend->release(1);
  EXPECT_EQ(backend->kv_blocks_used(), 0);
}

TEST(NoopBackend, PoolExhaustionThrowsAndChangesNothing) {
  auto backend = make_noop_backend(tiny_config(), small_limits(/*kv_blocks=*/3));
  std::vector<std::int32_t> next;
  backend->step({{1, 0, ones(20), true}}, next);  // 2 blocks
  EXPECT_NE(error_of(*backend, {{2, 0, ones(17), true}}).find("KV cache pool exhausted: the step needs 2 blocks, 1 of 3 are free"),
            std::string::npos);
  // The first sequence's token fits in its block, the second's prompt does not: nothing is applied.
  EXPECT_NE(error_of(*backend, {{1, 20, {5}, true}, {2, 0, ones(17), true}}).find("pool exhausted"), std::string::npos);
  EXPECT_EQ(backend->kv_blocks_used(), 2);
  backend->step({{1, 20, {5}, true}}, next);  // cached is still 20: the failed step appended nothing
  backend->step({{2, 0, ones(16), true}}, next);  // exactly the last block
  EXPECT_EQ(backend->kv_blocks_used(), 3);
  backend->release(1);
  EXPECT_EQ(backend->kv_blocks_used(), 1);
}

TEST(NoopBackend, RejectsInconsistentOrOversizedStepsLikeTheCpuBackend) {
  auto backend = make_noop_backend(tiny_config(), small_limits());
  std::vector<std::int32_t> next;
  backend->step({{1, 0, {1, 2, 3}, true}}, next);
  EXPECT_NE(error_of(*backend, {{1, 2, {4}, true}}).find("sequence 1 says cached = 2 but the KV cache holds 3 tokens"),
            std::string::npos);
  EXPECT_NE(error_of(*backend, {{2, 1, {4}, true}}).find("cached = 1"), std::string::npos);
  EXPECT_NE(error_of(*backend, {{2, 0, {}, true}}).find("has no tokens"), std::string::npos);
  EXPECT_NE(error_of(*backend, {{2, 0, {97}, true}}).find("outside [0, 97)"), std::string::npos);
  EXPECT_NE(error_of(*backend, {{2, 0, {1}, true}, {2, 0, {1}, true}}).find("appears twice"), std::string::npos);
  EXPECT_NE(error_of(*backend, {{2, 0, ones(257), true}}).find("over max_context 256"), std::string::npos);
  BackendLimits limits = small_limits();
  limits.max_batch_tokens = 8;
  limits.max_batch_sequences = 2;
  auto small = make_noop_backend(tiny_config(), limits);
  EXPECT_NE(error_of(*small, {{1, 0, ones(9), true}}).find("9 tokens exceed max_batch_tokens 8"), std::string::npos);
  EXPECT_NE(error_of(*small, {{1, 0, {1}, true}, {2, 0, {1}, true}, {3, 0, {1}, true}})
                .find("3 sequences exceed max_batch_sequences 2"),
            std::string::npos);
  EXPECT_EQ(small->kv_blocks_used(), 0);
  EXPECT_EQ(backend->kv_blocks_used(), 1);
}

TEST(NoopBackend, EncodeReturnsOneZeroPerSequenceAndHoldsNoBlocks) {
  auto backend = make_noop_backend(tiny_config(), small_limits());
  EXPECT_EQ(backend->encode({5, 12, 9}, 0), (std::vector<float>{0.f, 0.f, 0.f}));
  EXPECT_EQ(backend->encode({5, 12}, 20), (std::vector<float>{0.f, 0.f}));
  EXPECT_TRUE(backend->encode({}, 0).empty());
  EXPECT_EQ(backend->kv_blocks_used(), 0);
  EXPECT_THROW(backend->encode({5, 30}, 20), Error);    // longer than padded_length
  EXPECT_THROW(backend->encode({200, 200}, 0), Error);  // 400 tokens > max_batch_tokens
  EXPECT_THROW(backend->encode({0}, 0), Error);
}

// One check_encode() for every backend: the same bad batches fail with the same words.
TEST(NoopBackend, RejectsBadEncodesWithTheCpuBackendsWords) {
  BackendLimits limits = small_limits();
  limits.max_batch_sequences = 3;
  auto noop = make_noop_backend(tiny_config(), limits);
  auto cpu = make_cpu_backend(tiny_config(), limits);
  const std::pair<std::vector<std::int32_t>, std::int32_t> bad[] = {
      {{5, 30}, 20}, {{200, 200}, 0}, {{0}, 0}, {{300}, 0}, {{1, 1, 1, 1}, 0}};
  const std::string expected[] = {"length 30 exceeds padded_length 20", "2 x 200 tokens exceed max_batch_tokens 256",
                                  "every length must be > 0", "padded length 300 exceeds max_context 256",
                                  "4 sequences exceed max_batch_sequences 3"};
  for (std::size_t i = 0; i < std::size(bad); ++i) {
    const std::string from_noop = testing::error_of([&] { noop->encode(bad[i].first, bad[i].second); });
    const std::string from_cpu = testing::error_of([&] { cpu->encode(bad[i].first, bad[i].second); });
    EXPECT_EQ(from_noop, "noop backend encode: " + expected[i]);
    EXPECT_EQ(from_cpu, "cpu backend encode: " + expected[i]);
  }
}

TEST(NoopBackend, RejectsBadLimits) {
  EXPECT_THROW(make_noop_backend(tiny_config(), small_limits(/*kv_blocks=*/0)), Error);
  BackendLimits limits = small_limits();
  limits.block_tokens = 0;
  EXPECT_THROW(make_noop_backend(tiny_config(), limits), Error);
}

TEST(NoopBackend, MakeBackendBuildsItForDeviceNoop) {
  auto backend = make_backend("noop", tiny_config(), small_limits());
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->name(), "noop");
  std::vector<std::int32_t> next;
  backend->step({{1, 0, ones(17), true}}, next);
  EXPECT_EQ(next, (std::vector<std::int32_t>{0}));
  EXPECT_EQ(backend->kv_blocks_used(), 2);
  try {
    make_backend("tpu", tiny_config(), small_limits());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("valid: cpu, cuda:N, noop"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace twinfer::runtime
