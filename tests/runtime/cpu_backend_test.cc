#include "runtime/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "runtime/model/transformer_weights.h"
#include "tests/runtime/runtime_testing.h"

namespace twinfer::runtime {
namespace {

using Matrix = std::vector<std::vector<double>>;

TransformerConfig tiny_config() { return testing::tiny_transformer(256, 42); }

BackendLimits small_limits(std::int64_t kv_blocks = 64) { return testing::small_limits(kv_blocks); }

// The model written the slow, obvious way, in double: every call recomputes the whole sequence
// from its tokens, with no KV cache and no batching.
class NaiveTransformer {
 public:
  explicit NaiveTransformer(const TransformerConfig& c) : c_(c), w_(TransformerWeights::random(c)) {}

  // Logits after the last token of `tokens`, causal attention.
  std::vector<double> last_logits(const std::vector<std::int32_t>& tokens) const {
    const Matrix out = final_hidden(tokens, tokens.size(), /*causal=*/true);
    return matmul({out.back()}, w_.lm_head, c_.vocab)[0];
  }

  // Mean over tokens and features of the final normalized hidden states, bidirectional attention.
  double encode_mean(const std::vector<std::int32_t>& tokens) const {
    double sum = 0;
    for (const auto& row : final_hidden(tokens, tokens.size(), /*causal=*/false))
      for (double v : row) sum += v;
    return sum / (static_cast<double>(tokens.size()) * c_.hidden);
  }

 private:
  Matrix final_hidden(const std::vector<std::int32_t>& tokens, std::size_t n, bool causal) const {
    const int h = c_.hidden, kv = c_.kv_dim(), f = c_.ffn_hidden;
    Matrix x(n, std::vector<double>(h));
    for (std::size_t t = 0; t < n; ++t)
      for (int j = 0; j < h; ++j) x[t][j] = w_.embedding[tokens[t] * h + j];
    for (const LayerWeights& lw : w_.layers) {
      const Matrix xn = rms_norm(x, lw.attn_norm);
      Matrix q = matmul(xn, lw.wq, h), k = matmul(xn, lw.wk, kv), v = matmul(xn, lw.wv, kv);
      rope(q);
      rope(k);
      add(x, matmul(attention(q, k, v, causal), lw.wo, h));
      const Matrix xn2 = rms_norm(x, lw.mlp_norm);
      Matrix gate = matmul(xn2, lw.w_gate, f);
      const Matrix up = matmul(xn2, lw.w_up, f);
      for (std::size_t t = 0; t < n; ++t)
        for (int j = 0; j < f; ++j) gate[t][j] = gate[t][j] / (1 + std::exp(-gate[t][j])) * up[t][j];
      add(x, matmul(gate, lw.w_down, h));
    }
    return rms_norm(x, w_.final_norm);
  }

  Matrix attention(const Matrix& q, const Matrix& k, const Matrix& v, bool causal) const {
    const std::size_t n = q.size();
    const int hd = c_.head_dim(), group = c_.heads / c_.kv_heads;
    Matrix out(n, std::vector<double>(c_.hidden, 0.0));
    for (int head = 0; head < c_.heads; ++head) {
      const int qo = head * hd, ko = (head / group) * hd;
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t keys = causal ? i + 1 : n;
        std::vector<double> p(keys);
        double max_score = -1e300, total = 0;
        for (std::size_t j = 0; j < keys; ++j) {
          double dot = 0;
          for (int d = 0; d < hd; ++d) dot += q[i][qo + d] * k[j][ko + d];
          p[j] = dot / std::sqrt(static_cast<double>(hd));
          max_score = std::max(max_score, p[j]);
        }
        for (double& s : p) total += (s = std::exp(s - max_score));
        for (std::size_t j = 0; j < keys; ++j)
          for (int d = 0; d < hd; ++d) out[i][qo + d] += p[j] / total * v[j][ko + d];
      }
    }
    return out;
  }

  void rope(Matrix& m) const {
    const int hd = c_.head_dim();
    for (std::size_t pos = 0; pos < m.size(); ++pos)
      for (std::size_t base = 0; base < m[pos].size(); base += hd)
        for (int i = 0; i < hd / 2; ++i) {
          const double angle = pos * std::pow(static_cast<double>(c_.rope_theta), -2.0 * i / hd);
          const double a = m[pos][base + 2 * i], b = m[pos][base + 2 * i + 1];
          m[pos][base + 2 * i] = a * std::cos(angle) - b * std::sin(angle);
          m[pos][base + 2 * i + 1] = a * std::sin(angle) + b * std::cos(angle);
        }
  }

  Matrix rms_norm(const Matrix& x, const std::vector<float>& weight) const {
    Matrix out = x;
    for (auto& row : out) {
      double ss = 0;
      for (double v : row) ss += v * v;
      const double inv = 1 / std::sqrt(ss / row.size() + c_.rms_eps);
      for (std::size_t j = 0; j < row.size(); ++j) row[j] *= inv * weight[j];
    }
    return out;
  }

  static Matrix matmul(const Matrix& a, const std::vector<float>& w, int out_cols) {
    Matrix out(a.size(), std::vector<double>(out_cols, 0.0));
    for (std::size_t r = 0; r < a.size(); ++r)
      for (std::size_t i = 0; i < a[r].size(); ++i)
        for (int o = 0; o < out_cols; ++o) out[r][o] += a[r][i] * w[i * out_cols + o];
    return out;
  }

  static void add(Matrix& x, const Matrix& y) {
    for (std::size_t r = 0; r < x.size(); ++r)
      for (std::size_t j = 0; j < x[r].size(); ++j) x[r][j] += y[r][j];
  }

  TransformerConfig c_;
  TransformerWeights w_;
};

// Row `row` of the backend's last logits equals `expected` within 1e-4 of the row's largest logit.
void expect_logits_match(const Backend& backend, int row, const std::vector<double>& expected) {
  const int vocab = static_cast<int>(expected.size());
  ASSERT_GE(backend.last_logits().size(), static_cast<std::size_t>((row + 1) * vocab));
  double scale = 0;
  for (double e : expected) scale = std::max(scale, std::abs(e));
  ASSERT_GT(scale, 0.01);
  for (int j = 0; j < vocab; ++j)
    ASSERT_NEAR(backend.last_logits()[row * vocab + j], expected[j], 1e-4 * scale) << "row " << row << " logit " << j;
}

std::int32_t argmax(const std::vector<double>& v) {
  return static_cast<std::int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

std::vector<std::int32_t> slice(const std::vector<std::int32_t>& v, std::size_t from, std::size_t to) {
  return std::vector<std::int32_t>(v.begin() + from, v.begin() + to);
}

class CpuBackendTest : public ::testing::Test {
 protected:
  TransformerConfig config_ = tiny_config();
  NaiveTransformer reference_{config_};
  testing::BlockTables tables_{64};
  std::vector<std::int32_t> next_;
};

TEST_F(CpuBackendTest, NameIsCpu) { EXPECT_EQ(make_cpu_backend(config_, small_limits())->name(), "cpu"); }

TEST_F(CpuBackendTest, SinglePromptPrefilledAtOnce) {
  auto backend = make_cpu_backend(config_, small_limits());
  const auto prompt = prompt_tokens(7, 20, config_.vocab);
  backend->step({tables_.step(7, 0, prompt)}, next_);
  const auto expected = reference_.last_logits(prompt);
  ASSERT_EQ(backend->last_logits().size(), 97u);
  expect_logits_match(*backend, 0, expected);
  ASSERT_EQ(next_.size(), 1u);
  EXPECT_EQ(next_[0], argmax(expected));
  EXPECT_EQ(tables_.used(), 2);  // 20 tokens in blocks of 16
}

TEST_F(CpuBackendTest, ChunkedPrefillThenDecodeMatchesTheGrowingSequence) {
  auto backend = make_cpu_backend(config_, small_limits());
  std::vector<std::int32_t> seq = prompt_tokens(3, 20, config_.vocab);
  const std::size_t chunk_ends[] = {7, 14, 20};
  std::size_t done = 0;
  for (std::size_t end : chunk_ends) {
    backend->step({tables_.step(3, static_cast<std::int32_t>(done), slice(seq, done, end))}, next_);
    expect_logits_match(*backend, 0, reference_.last_logits(slice(seq, 0, end)));
    done = end;
  }
  for (int i = 0; i < 5; ++i) {
    seq.push_back(next_[0]);
    backend->step({tables_.step(3, static_cast<std::int32_t>(seq.size() - 1), {seq.back()})}, next_);
    const auto expected = reference_.last_logits(seq);
    expect_logits_match(*backend, 0, expected);
    EXPECT_EQ(next_[0], argmax(expected));
  }
}

TEST_F(CpuBackendTest, MixedBatchOfPrefillAndDecodes) {
  auto backend = make_cpu_backend(config_, small_limits());
  auto a = prompt_tokens(1, 10, config_.vocab), b = prompt_tokens(2, 5, config_.vocab);
  const auto c = prompt_tokens(3, 12, config_.vocab);
  backend->step({tables_.step(1, 0, a), tables_.step(2, 0, b)}, next_);
  a.push_back(next_[0]);
  b.push_back(next_[1]);
  backend->step({tables_.step(1, 10, {a.back()}), tables_.step(3, 0, c), tables_.step(2, 5, {b.back()})}, next_);
  ASSERT_EQ(next_.size(), 3u);
  expect_logits_match(*backend, 0, reference_.last_logits(a));
  expect_logits_match(*backend, 1, reference_.last_logits(c));
  expect_logits_match(*backend, 2, reference_.last_logits(b));

  // A non-sampling prefill chunk produces no row: the sampling sequences' rows stay in batch order.
  a.push_back(next_[0]);
  const auto d = prompt_tokens(4, 9, config_.vocab);
  backend->step({tables_.step(4, 0, d, false), tables_.step(1, 11, {a.back()})}, next_);
  ASSERT_EQ(next_.size(), 1u);
  ASSERT_EQ(backend->last_logits().size(), 97u);
  expect_logits_match(*backend, 0, reference_.last_logits(a));
}

TEST_F(CpuBackendTest, ReleaseThenRecomputeGivesTheSameLogits) {
  auto backend = make_cpu_backend(config_, small_limits());
  const auto prompt = prompt_tokens(9, 18, config_.vocab);
  auto run = [&] {
    backend->step({tables_.step(9, 0, prompt)}, next_);
    const std::int32_t first = next_[0];
    backend->step({tables_.step(9, 18, {first})}, next_);
    return std::make_pair(first, backend->last_logits());
  };
  const auto before = run();
  EXPECT_EQ(tables_.used(), 2);
  tables_.release(9);
  EXPECT_EQ(tables_.used(), 0);
  const auto again = run();
  EXPECT_EQ(again.first, before.first);
  EXPECT_EQ(again.second, before.second);  // same steps on the same blocks: bit for bit

  // Recompute after preemption: the whole sequence in one prefill.
  tables_.release(9);
  auto full = prompt;
  full.push_back(before.first);
  backend->step({tables_.step(9, 0, full)}, next_);
  for (int j = 0; j < config_.vocab; ++j) EXPECT_NEAR(backend->last_logits()[j], before.second[j], 1e-4);
}

// Prefix caching: a sequence whose table starts with another's blocks attends over the keys and
// values that one stored, and gets bit for bit what computing its prefix again in the same steps
// gets.
TEST_F(CpuBackendTest, SharedPrefixBlocksGiveBitIdenticalLogitsToComputingThePrefixAgain) {
  auto backend = make_cpu_backend(config_, small_limits());
  const auto shared = prompt_tokens(1, 48, config_.vocab);
  auto tail_a = prompt_tokens(2, 16, config_.vocab), tail_b = prompt_tokens(3, 19, config_.vocab);
  // A: the 48-token prefix, then its own 16 tokens.
  backend->step({tables_.step(1, 0, shared)}, next_);
  backend->step({tables_.step(1, 48, tail_a)}, next_);
  // B shares A's three prefix blocks and computes only its own tail.
  const runtime::StepSequence a_table = tables_.step(1, 64, {});
  runtime::StepSequence b = tables_.step(2, 48, tail_b);
  std::copy(a_table.blocks.begin(), a_table.blocks.begin() + 3, b.blocks.begin());
  backend->step({b}, next_);
  const std::vector<float> shared_logits = backend->last_logits();
  const std::int32_t shared_next = next_[0];
  // C computes the same prefix again in its own blocks, in the same two steps.
  backend->step({tables_.step(3, 0, shared)}, next_);
  backend->step({tables_.step(3, 48, tail_b)}, next_);
  EXPECT_EQ(backend->last_logits(), shared_logits);
  EXPECT_EQ(next_[0], shared_next);
  auto whole = shared;
  whole.insert(whole.end(), tail_b.begin(), tail_b.end());
  expect_logits_match(*backend, 0, reference_.last_logits(whole));
}

// The host tier: a prefix's blocks stored to host memory, their device blocks then overwritten by
// another sequence, and loaded back into other blocks, give the logits of computing it again.
TEST_F(CpuBackendTest, PrefixBlocksLoadedBackFromTheHostTierGiveBitIdenticalLogits) {
  BackendLimits limits = small_limits();
  limits.host_kv_blocks = 8;
  auto backend = make_cpu_backend(config_, limits);
  const auto shared = prompt_tokens(1, 48, config_.vocab);
  const auto tail = prompt_tokens(3, 19, config_.vocab);
  backend->step({tables_.step(1, 0, shared)}, next_);
  const runtime::StepSequence a = tables_.step(1, 48, {});
  KvTransfers copies;
  for (std::int32_t i = 0; i < 3; ++i) copies.stores.push_back(KvCopy{a.blocks[std::size_t(i)], 5 + i});
  backend->copy_kv(copies);
  // Another prompt overwrites A's blocks.
  runtime::StepSequence other = tables_.step(2, 0, prompt_tokens(2, 48, config_.vocab));
  std::copy(a.blocks.begin(), a.blocks.begin() + 3, other.blocks.begin());
  backend->step({other}, next_);
  // B loads the prefix into its own blocks and computes only its tail.
  runtime::StepSequence b = tables_.step(4, 48, tail);
  copies.clear();
  for (std::int32_t i = 0; i < 3; ++i) copies.loads.push_back(KvCopy{b.blocks[std::size_t(i)], 5 + i});
  backend->copy_kv(copies);
  backend->step({b}, next_);
  const std::vector<float> loaded = backend->last_logits();
  backend->step({tables_.step(3, 0, shared)}, next_);
  backend->step({tables_.step(3, 48, tail)}, next_);
  EXPECT_EQ(backend->last_logits(), loaded);
  // A copy outside either pool is refused before anything is copied.
  copies.clear();
  copies.loads.push_back(KvCopy{0, 8});
  try {
    backend->copy_kv(copies);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cpu backend copy_kv: load 0 (block 0, host block 8) is outside"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(CpuBackendTest, PromptsAroundABlockBoundary) {
  for (std::int32_t length : {15, 16, 17}) {
    auto backend = make_cpu_backend(config_, small_limits());
    testing::BlockTables tables(64);
    auto seq = prompt_tokens(static_cast<RequestId>(length), length, config_.vocab);
    backend->step({tables.step(5, 0, seq)}, next_);
    expect_logits_match(*backend, 0, reference_.last_logits(seq));
    EXPECT_EQ(tables.used(), length <= 16 ? 1 : 2) << length;
    for (int i = 0; i < 2; ++i) {
      seq.push_back(next_[0]);
      backend->step({tables.step(5, static_cast<std::int32_t>(seq.size() - 1), {seq.back()})}, next_);
      expect_logits_match(*backend, 0, reference_.last_logits(seq));
    }
  }
}

TEST_F(CpuBackendTest, RejectsBlockTablesThatDoNotHoldTheTokens) {
  auto backend = make_cpu_backend(config_, small_limits(/*kv_blocks=*/3));
  const auto prompt = prompt_tokens(1, 20, config_.vocab);
  try {
    backend->step({runtime::StepSequence{1, 0, prompt, {0}, true}}, next_);
    FAIL() << "expected an error";
  } catch (const SequenceError& e) {
    EXPECT_EQ(e.id(), 1u);
    EXPECT_EQ(std::string(e.what()), "cpu backend step: sequence 1 has 1 blocks for 20 tokens, which need 2");
  }
  try {
    backend->step({runtime::StepSequence{1, 0, prompt, {0, 3}, true}}, next_);
    FAIL() << "expected an error";
  } catch (const SequenceError& e) {
    EXPECT_EQ(std::string(e.what()), "cpu backend step: sequence 1 has block 3 outside the pool's [0, 3)");
  }
  // Unused trailing blocks are not read.
  backend->step({runtime::StepSequence{1, 0, prompt, {2, 1, 9}, true}}, next_);
  expect_logits_match(*backend, 0, reference_.last_logits(prompt));
}

TEST_F(CpuBackendTest, RejectsInconsistentOrOversizedSteps) {
  auto backend = make_cpu_backend(config_, small_limits());
  EXPECT_THROW(backend->step({tables_.step(2, 0, {})}, next_), Error);        // nothing to process
  EXPECT_THROW(backend->step({tables_.step(2, 0, {97})}, next_), Error);      // token outside the vocabulary
  EXPECT_THROW(backend->step({tables_.step(2, 0, {1}), tables_.step(2, 0, {1})}, next_), Error);  // twice
  EXPECT_THROW(backend->step({tables_.step(2, -1, {1})}, next_), Error);      // negative cached
  EXPECT_THROW(backend->step({runtime::StepSequence{2, 0, std::vector<std::int32_t>(257, 1), {}, true}}, next_),
               Error);  // max_context
  BackendLimits limits = small_limits();
  limits.max_batch_tokens = 8;
  limits.max_batch_sequences = 2;
  auto small = make_cpu_backend(config_, limits);
  EXPECT_THROW(small->step({tables_.step(1, 0, std::vector<std::int32_t>(9, 1))}, next_), Error);
  EXPECT_THROW(small->step({tables_.step(1, 0, {1}), tables_.step(2, 0, {1}), tables_.step(3, 0, {1})}, next_), Error);
}

TEST_F(CpuBackendTest, RejectsBadLimitsAndSizes) {
  EXPECT_THROW(make_cpu_backend(config_, small_limits(/*kv_blocks=*/0)), Error);
  TransformerConfig odd = config_;
  odd.hidden = 12;  // head dimension 3
  EXPECT_THROW(make_cpu_backend(odd, small_limits()), Error);
}

TEST_F(CpuBackendTest, EncodeMatchesTheBidirectionalReferenceAndIgnoresPadding) {
  auto backend = make_cpu_backend(config_, small_limits());
  const std::vector<std::int32_t> lengths = {5, 12, 9};
  const auto tight = backend->encode(lengths, 0);
  const auto padded = backend->encode(lengths, 20);
  ASSERT_EQ(tight.size(), 3u);
  ASSERT_EQ(padded.size(), 3u);
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    const double expected = reference_.encode_mean(prompt_tokens(i, lengths[i], config_.vocab));
    EXPECT_NEAR(tight[i], expected, 1e-5) << i;
    EXPECT_NEAR(padded[i], tight[i], 1e-6) << i;
  }
  EXPECT_THROW(backend->encode({5, 30}, 20), Error);  // longer than padded_length
  EXPECT_THROW(backend->encode({200, 200}, 0), Error);  // 400 tokens > max_batch_tokens
}

}  // namespace
}  // namespace twinfer::runtime
