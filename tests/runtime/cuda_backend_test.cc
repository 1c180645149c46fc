// The CUDA backend against the CPU reference on a tiny seeded model: same greedy tokens, logits
// within 1e-3 of the largest logit. Tests that need a GPU skip where there is none.
#include <gtest/gtest.h>

#ifdef TWINFER_HAVE_CUDA

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/backend/backend.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/cuda/cuda_backend.h"
#include "tests/runtime/runtime_testing.h"

namespace twinfer::runtime {
namespace {

#define SKIP_WITHOUT_GPU() \
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device: the CUDA backend cannot run here"

TransformerConfig tiny_config() { return testing::tiny_transformer(128, 7); }

// Blocks of 4 tokens, so that every test crosses block boundaries.
BackendLimits tiny_limits() { return testing::small_limits(64, 4); }


// Every element within 1e-3 of the reference's largest magnitude (a bare relative error would be
// meaningless for logits near zero).
void expect_close(const std::vector<float>& actual, const std::vector<float>& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  float scale = 0.f;
  for (float e : expected) scale = std::max(scale, std::fabs(e));
  const float tolerance = 1e-3f * scale;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], tolerance) << what << ", element " << i;
  }
}

class CudaVsCpu {
 public:
  explicit CudaVsCpu(const BackendLimits& limits = tiny_limits())
      : cuda_(make_cuda_backend(0, tiny_config(), limits)), cpu_(make_cpu_backend(tiny_config(), limits)) {}

  // `id`'s part of a step, its block table grown to hold the tokens (both backends read one pool
  // layout: the tables are the same).
  StepSequence seq(RequestId id, std::int32_t cached, std::vector<std::int32_t> tokens, bool sample = true) {
    return tables_.step(id, cached, std::move(tokens), sample);
  }
  testing::BlockTables& tables() { return tables_; }

  // Runs the batch on both and checks that they agree; returns the next tokens.
  std::vector<std::int32_t> step(const std::vector<StepSequence>& batch, const std::string& what) {
    std::vector<std::int32_t> cuda_next, cpu_next;
    cuda_->step(batch, cuda_next);
    cpu_->step(batch, cpu_next);
    EXPECT_EQ(cuda_next, cpu_next) << what;
    expect_close(cuda_->last_logits(), cpu_->last_logits(), what);
    return cuda_next;
  }

  // Carries out the same block copies on both.
  void copy(const KvTransfers& copies) {
    cuda_->copy_kv(copies);
    cpu_->copy_kv(copies);
  }

  Backend& cuda() { return *cuda_; }
  Backend& cpu() { return *cpu_; }

 private:
  std::unique_ptr<Backend> cuda_;
  std::unique_ptr<Backend> cpu_;
  testing::BlockTables tables_{tiny_limits().kv_blocks, tiny_limits().block_tokens};
};

TEST(CudaBackend, ChunkedPrefillThenDecodeMatchesCpu) {
  SKIP_WITHOUT_GPU();
  CudaVsCpu both;
  const int vocab = tiny_config().vocab;
  const std::vector<std::int32_t> prompt = prompt_tokens(1, 11, vocab);
  const std::vector<std::int32_t> chunk1(prompt.begin(), prompt.begin() + 5);
  const std::vector<std::int32_t> chunk2(prompt.begin() + 5, prompt.begin() + 10);

  EXPECT_TRUE(both.step({both.seq(1, 0, chunk1, false)}, "chunk 1").empty());
  EXPECT_TRUE(both.cuda().last_logits().empty());
  EXPECT_TRUE(both.step({both.seq(1, 5, chunk2, false)}, "chunk 2").empty());
  std::vector<std::int32_t> next = both.step({both.seq(1, 10, {prompt[10]})}, "last prompt token");
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(both.cuda().last_logits().size(), static_cast<std::size_t>(vocab));
  for (int i = 0; i < 6; ++i) {
    next = both.step({both.seq(1, 11 + i, {next[0]})}, "decode " + std::to_string(i));
    ASSERT_EQ(next.size(), 1u);
    EXPECT_GE(next[0], 0);
    EXPECT_LT(next[0], vocab);
  }
  EXPECT_EQ(both.tables().used(), 5);  // 17 tokens in blocks of 4
}

TEST(CudaBackend, MixedBatchOfThreeMatchesCpu) {
  SKIP_WITHOUT_GPU();
  CudaVsCpu both;
  const int vocab = tiny_config().vocab;
  const std::vector<std::int32_t> a = prompt_tokens(10, 9, vocab);
  const std::vector<std::int32_t> b = prompt_tokens(11, 9, vocab);
  const std::vector<std::int32_t> c = prompt_tokens(12, 7, vocab);

  const std::vector<std::int32_t> first =
      both.step({both.seq(10, 0, a), both.seq(11, 0, std::vector<std::int32_t>(b.begin(), b.begin() + 3), false)}, "prefill a, first chunk of b");
  ASSERT_EQ(first.size(), 1u);
  // A decode, a prefill chunk and a new prompt in one iteration; c does not sample yet.
  std::vector<std::int32_t> next = both.step(
      {both.seq(10, 9, {first[0]}), both.seq(11, 3, std::vector<std::int32_t>(b.begin() + 3, b.end())),
       both.seq(12, 0, std::vector<std::int32_t>(c.begin(), c.begin() + 6), false)}, "mixed batch");
  ASSERT_EQ(next.size(), 2u);
  const std::int32_t c_first = both.step({both.seq(12, 6, {c[6]})}, "c alone").at(0);
  std::vector<std::int32_t> next_c = {c_first};
  for (int i = 0; i < 4; ++i) {
    const std::vector<std::int32_t> out = both.step(
        {both.seq(10, 10 + i, {next[0]}), both.seq(11, 9 + i, {next[1]}), both.seq(12, 7 + i, {next_c[0]})},
        "decode of three, step " + std::to_string(i));
    ASSERT_EQ(out.size(), 3u);
    next = {out[0], out[1]};
    next_c = {out[2]};
  }
  EXPECT_EQ(both.cuda().last_logits().size(), 3u * vocab);
}

TEST(CudaBackend, PreemptionAndRecomputeMatchesCpuAndTheUninterruptedRun) {
  SKIP_WITHOUT_GPU();
  CudaVsCpu both;
  const int vocab = tiny_config().vocab;
  const std::vector<std::int32_t> prompt = prompt_tokens(3, 10, vocab);
  std::vector<std::int32_t> history = prompt;
  std::int32_t next = both.step({both.seq(3, 0, prompt)}, "prefill").at(0);
  for (int i = 0; i < 2; ++i) {
    history.push_back(next);
    next = both.step({both.seq(3, 10 + i, {next})}, "decode " + std::to_string(i)).at(0);
  }
  history.push_back(next);  // 13 tokens: prompt and three generated; 12 of them cached

  // The run that is not preempted, on a separate CPU backend.
  std::unique_ptr<Backend> uninterrupted = make_cpu_backend(tiny_config(), tiny_limits());
  testing::BlockTables own(tiny_limits().kv_blocks, tiny_limits().block_tokens);
  std::vector<std::int32_t> out;
  uninterrupted->step({own.step(4, 0, std::vector<std::int32_t>(history.begin(), history.end() - 1))}, out);
  uninterrupted->step({own.step(4, 12, {history.back()})}, out);

  both.tables().release(3);
  EXPECT_EQ(both.tables().used(), 0);
  const std::vector<std::int32_t> recomputed = both.step({both.seq(3, 0, history)}, "recompute");
  EXPECT_EQ(both.tables().used(), 4);  // 13 tokens in blocks of 4
  EXPECT_EQ(recomputed, out);
  expect_close(both.cuda().last_logits(), uninterrupted->last_logits(), "recompute vs uninterrupted");
}

// Prefix caching: a sequence whose table starts with another's blocks reads what that one stored,
// and gets what computing the prefix again in the same steps gets, on the GPU as on the CPU.
TEST(CudaBackend, SharedPrefixBlocksMatchComputingThePrefixAgain) {
  SKIP_WITHOUT_GPU();
  CudaVsCpu both;
  const int vocab = tiny_config().vocab;
  const std::vector<std::int32_t> shared = prompt_tokens(1, 12, vocab);
  const std::vector<std::int32_t> tail_a = prompt_tokens(2, 4, vocab), tail_b = prompt_tokens(3, 6, vocab);
  both.step({both.seq(1, 0, shared, false)}, "prefix of a");
  both.step({both.seq(1, 12, tail_a)}, "tail of a");
  const StepSequence a = both.seq(1, 16, {});
  StepSequence b = both.seq(2, 12, tail_b);
  std::copy(a.blocks.begin(), a.blocks.begin() + 3, b.blocks.begin());  // a's three prefix blocks
  both.step({b}, "b on a's prefix");
  const std::vector<float> shared_logits = both.cuda().last_logits();
  both.step({both.seq(3, 0, shared, false)}, "prefix again");
  both.step({both.seq(3, 12, tail_b)}, "b's tail after its own prefix");
  expect_close(both.cuda().last_logits(), shared_logits, "shared prefix vs computed again");
}

// The host tier: a prefix's blocks stored to host memory, overwritten on the device and loaded back
// into other blocks give what computing the prefix again gives, on the GPU as on the CPU.
TEST(CudaBackend, PrefixBlocksLoadedFromTheHostTierMatchComputingThePrefixAgain) {
  SKIP_WITHOUT_GPU();
  BackendLimits limits = tiny_limits();
  limits.host_kv_blocks = 8;
  CudaVsCpu both(limits);
  const int vocab = tiny_config().vocab;
  const std::vector<std::int32_t> shared = prompt_tokens(1, 12, vocab), tail = prompt_tokens(3, 6, vocab);
  both.step({both.seq(1, 0, shared, false)}, "prefix of a");
  const StepSequence a = both.seq(1, 12, {});
  KvTransfers copies;
  for (std::int32_t i = 0; i < 3; ++i) copies.stores.push_back(KvCopy{a.blocks[std::size_t(i)], 2 + i});
  both.copy(copies);
  StepSequence other = both.seq(2, 0, prompt_tokens(2, 12, vocab), false);
  std::copy(a.blocks.begin(), a.blocks.begin() + 3, other.blocks.begin());  // overwrites a's blocks
  both.step({other}, "another prompt in a's blocks");
  StepSequence b = both.seq(4, 12, tail);
  copies.clear();
  for (std::int32_t i = 0; i < 3; ++i) copies.loads.push_back(KvCopy{b.blocks[std::size_t(i)], 2 + i});
  both.copy(copies);
  both.step({b}, "b on the prefix loaded from host memory");
  const std::vector<float> loaded = both.cuda().last_logits();
  both.step({both.seq(3, 0, shared, false)}, "prefix again");
  both.step({both.seq(3, 12, tail)}, "b's tail after its own prefix");
  expect_close(both.cuda().last_logits(), loaded, "loaded prefix vs computed again");
}

TEST(CudaBackend, EncodeMatchesCpuAndIgnoresPadding) {
  SKIP_WITHOUT_GPU();
  CudaVsCpu both;
  const std::vector<std::int32_t> lengths = {5, 9, 1};
  const std::vector<float> tight = both.cuda().encode(lengths, 0);
  ASSERT_EQ(tight.size(), 3u);
  expect_close(tight, both.cpu().encode(lengths, 0), "encode, padded to the longest");
  const std::vector<float> padded = both.cuda().encode(lengths, 12);
  expect_close(padded, both.cpu().encode(lengths, 12), "encode, padded to 12");
  expect_close(padded, tight, "padding changes nothing");
  EXPECT_NE(tight[0], tight[1]);  // different inputs, different outputs
}

TEST(CudaBackend, ABadBlockTableThrowsAndChangesNothing) {
  SKIP_WITHOUT_GPU();
  BackendLimits limits = tiny_limits();
  limits.kv_blocks = 3;  // 12 tokens
  std::unique_ptr<Backend> cuda = make_cuda_backend(0, tiny_config(), limits);
  testing::BlockTables tables(3, limits.block_tokens);
  std::vector<std::int32_t> next;
  cuda->step({tables.step(1, 0, prompt_tokens(1, 8, tiny_config().vocab))}, next);
  try {
    cuda->step({tables.step(1, 8, {1}), StepSequence{2, 0, prompt_tokens(2, 5, tiny_config().vocab), {2, 3}, true}},
               next);
    FAIL() << "expected twinfer::Error";
  } catch (const SequenceError& e) {
    EXPECT_EQ(std::string(e.what()), "cuda:0 backend step: sequence 2 has block 3 outside the pool's [0, 3)");
  }
  cuda->step({tables.step(1, 8, {1})}, next);  // the sequence goes on where it was
  EXPECT_EQ(next.size(), 1u);
}

// Runs without a GPU too: device indices past the visible ones are refused by name.
TEST(CudaBackend, MissingDeviceThrowsNamingIt) {
  const int missing = cuda_device_count();
  try {
    make_cuda_backend(missing, tiny_config(), tiny_limits());
    FAIL() << "expected twinfer::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:" + std::to_string(missing) + ": no such CUDA device"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_cuda_backend(-1, tiny_config(), tiny_limits()), Error);
}

#undef SKIP_WITHOUT_GPU

}  // namespace
}  // namespace twinfer::runtime

#else  // !TWINFER_HAVE_CUDA

TEST(CudaBackend, NotBuilt) { GTEST_SKIP() << "built without CUDA: there is no CUDA backend to test"; }

#endif  // TWINFER_HAVE_CUDA
