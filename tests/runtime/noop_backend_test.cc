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
  testing::BlockTables t(64);
  EXPECT_EQ(backend->name(), "noop");
  std::vector<std::int32_t> next = {7, 7, 7, 7, 7};  // stale contents are replaced
  backend->step({t.step(1, 0, ones(5)), t.step(2, 0, ones(3), false), t.step(3, 0, ones(1))}, next);
  EXPECT_EQ(next, (std::vector<std::int32_t>{0, 0}));
  backend->step({t.step(2, 3, ones(2), false)}, next);
  EXPECT_TRUE(next.empty());
  backend->step({t.step(1, 5, {0}), t.step(2, 5, {0}), t.step(3, 1, {0})}, next);
  EXPECT_EQ(next, (std::vector<std::int32_t>{0, 0, 0}));
  EXPECT_TRUE(backend->last_logits().empty());
}

// One check_step() for every backend: the same bad steps fail with the same words.
TEST(NoopBackend, RejectsInconsistentOrOversizedStepsLikeTheCpuBackend) {
  auto noop = make_noop_backend(tiny_config(), small_limits(/*kv_blocks=*/3));
  auto cpu = make_cpu_backend(tiny_config(), small_limits(/*kv_blocks=*/3));
  const std::vector<std::pair<std::vector<StepSequence>, std::string>> bad = {
      {{{2, 0, {}, {0}, true}}, "sequence 2 has no tokens to process"},
      {{{2, 0, {97}, {0}, true}}, "sequence 2 has token 97 outside [0, 97)"},
      {{{2, 0, {1}, {0}, true}, {2, 0, {1}, {1}, true}}, "sequence 2 appears twice in one step"},
      {{{2, -1, {1}, {0}, true}}, "sequence 2 says cached = -1"},
      {{{2, 0, ones(257), {0}, true}}, "sequence 2 would reach 257 tokens, over max_context 256"},
      {{{2, 16, ones(2), {0}, true}}, "sequence 2 has 1 blocks for 18 tokens, which need 2"},
      {{{2, 0, ones(2), {-1}, true}}, "sequence 2 has block -1 outside the pool's [0, 3)"},
  };
  for (const auto& [batch, words] : bad) {
    EXPECT_EQ(error_of(*noop, batch), "noop backend step: " + words);
    EXPECT_EQ(error_of(*cpu, batch), "cpu backend step: " + words);
  }
  BackendLimits limits = small_limits();
  limits.max_batch_tokens = 8;
  limits.max_batch_sequences = 2;
  auto small = make_noop_backend(tiny_config(), limits);
  EXPECT_NE(error_of(*small, {{1, 0, ones(9), {0}, true}}).find("9 tokens exceed max_batch_tokens 8"), std::string::npos);
  EXPECT_NE(error_of(*small, {{1, 0, {1}, {0}, true}, {2, 0, {1}, {1}, true}, {3, 0, {1}, {2}, true}})
                .find("3 sequences exceed max_batch_sequences 2"),
            std::string::npos);
}

TEST(NoopBackend, EncodeReturnsOneZeroPerSequenceAndHoldsNoBlocks) {
  auto backend = make_noop_backend(tiny_config(), small_limits());
  EXPECT_EQ(backend->encode({5, 12, 9}, 0), (std::vector<float>{0.f, 0.f, 0.f}));
  EXPECT_EQ(backend->encode({5, 12}, 20), (std::vector<float>{0.f, 0.f}));
  EXPECT_TRUE(backend->encode({}, 0).empty());
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
  backend->step({{1, 0, ones(17), {0, 1}, true}}, next);
  EXPECT_EQ(next, (std::vector<std::int32_t>{0}));
  try {
    make_backend("tpu", tiny_config(), small_limits());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("valid: cpu, cuda:N, noop"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace twinfer::runtime
