#include "runtime/cpu/cpu_backend.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>
#include <string>

#include <Eigen/Core>

#include "core/error.h"
#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/paged_kv_cache.h"
#include "runtime/model/transformer_weights.h"
#include "runtime/backend/step_checks.h"

namespace twinfer::runtime {
namespace {

using cpu::ConstMatrixMap;
using cpu::MatrixMap;

std::size_t floats(std::int64_t rows, int cols) { return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols); }

ConstMatrixMap weight(const std::vector<float>& w, int rows, int cols) { return ConstMatrixMap(w.data(), rows, cols); }

class CpuBackend final : public Backend {
 public:
  CpuBackend(const TransformerConfig& config, const BackendLimits& limits);

  void step(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next_tokens) override;
  const std::vector<float>& last_logits() const override { return logits_; }
  std::vector<float> encode(const std::vector<std::int32_t>& lengths, std::int32_t padded_length) override;
  void copy_kv(const KvTransfers& copies) override;
  std::string name() const override { return "cpu"; }

 private:
  void validate(const std::vector<StepSequence>& batch) const;
  void embed(const std::int32_t* tokens, int count, float* rows) const;
  void append_to_cache(const std::vector<StepSequence>& batch);
  // One transformer block over the first `rows` rows of x_; `attention` fills attn_ from q_, k_, v_.
  template <class Attention>
  void run_layer(int layer, int rows, Attention&& attention);
  void attend_cached(int layer, const std::vector<StepSequence>& batch);
  void sample(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next_tokens);

  TransformerConfig config_;
  BackendLimits limits_;
  TransformerWeights weights_;
  PagedKvCache cache_;
  std::vector<float> host_tier_;  // host_kv_blocks blocks laid out as the pool's
  cpu::RotaryTable rotary_;
  cpu::AttentionShape shape_;
  // Workspaces, sized once for max_batch_tokens rows (or max_batch_sequences sampled rows).
  std::vector<float> x_, xn_, q_, k_, v_, attn_, gate_, up_, scores_, sampled_, logits_;
  std::vector<std::int32_t> positions_, block_of_, offset_of_, first_row_;
  std::vector<cpu::KvSegment> segments_;
};

CpuBackend::CpuBackend(const TransformerConfig& config, const BackendLimits& limits)
    : config_(config),
      limits_(limits),
      weights_(TransformerWeights::random(config)),
      cache_(limits.kv_blocks, limits.block_tokens, config.layers, config.kv_dim()),
      rotary_(config.max_context, config.head_dim(), config.rope_theta),
      shape_{config.heads, config.kv_heads, config.head_dim()} {
  // One thread per backend: a host runs several workers side by side. Eigen's setting is
  // process-wide and unsynchronized, and backends are built on several threads at once (loader
  // threads of an elastic pool): set it once.
  static std::once_flag single_threaded;
  std::call_once(single_threaded, [] { Eigen::setNbThreads(1); });
  const std::int64_t t = limits.max_batch_tokens;
  for (auto* buffer : {&x_, &xn_, &q_, &attn_}) buffer->resize(floats(t, config.hidden));
  k_.resize(floats(t, config.kv_dim()));
  v_.resize(floats(t, config.kv_dim()));
  gate_.resize(floats(t, config.ffn_hidden));
  up_.resize(floats(t, config.ffn_hidden));
  scores_.resize(floats(cpu::kAttentionQueryTile, config.max_context));
  sampled_.resize(floats(limits.max_batch_sequences, config.hidden));
  logits_.reserve(floats(limits.max_batch_sequences, config.vocab));
  for (auto* buffer : {&positions_, &block_of_, &offset_of_}) buffer->resize(static_cast<std::size_t>(t));
  first_row_.resize(static_cast<std::size_t>(limits.max_batch_sequences) + 1);
  host_tier_.resize(static_cast<std::size_t>(limits.host_kv_blocks) * cache_.block_floats());
  segments_.resize(static_cast<std::size_t>((config.max_context + limits.block_tokens - 1) / limits.block_tokens));
}

// Every check runs before any state changes, so a rejected step leaves the cache as it was.
void CpuBackend::validate(const std::vector<StepSequence>& batch) const {
  check_step(batch, config_, limits_, "cpu");
}

void CpuBackend::embed(const std::int32_t* tokens, int count, float* rows) const {
  for (int i = 0; i < count; ++i)
    std::memcpy(rows + floats(i, config_.hidden), weights_.embedding.data() + floats(tokens[i], config_.hidden),
                sizeof(float) * static_cast<std::size_t>(config_.hidden));
}

void CpuBackend::append_to_cache(const std::vector<StepSequence>& batch) {
  int row = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const StepSequence& s = batch[i];
    const int n = static_cast<int>(s.tokens.size());
    first_row_[i] = row;
    const int block_tokens = cache_.block_tokens();
    for (int j = 0; j < n; ++j) {
      const auto r = static_cast<std::size_t>(row + j);
      positions_[r] = s.cached + j;
      block_of_[r] = s.blocks[static_cast<std::size_t>(positions_[r] / block_tokens)];
      offset_of_[r] = positions_[r] % block_tokens;
    }
    embed(s.tokens.data(), n, x_.data() + floats(row, config_.hidden));
    row += n;
  }
  first_row_[batch.size()] = row;
}

template <class Attention>
void CpuBackend::run_layer(int layer, int rows, Attention&& attention) {
  const LayerWeights& w = weights_.layers[static_cast<std::size_t>(layer)];
  const int h = config_.hidden, kv = config_.kv_dim(), f = config_.ffn_hidden;
  MatrixMap x(x_.data(), rows, h), xn(xn_.data(), rows, h), attn(attn_.data(), rows, h);
  MatrixMap q(q_.data(), rows, h), k(k_.data(), rows, kv), v(v_.data(), rows, kv);
  MatrixMap gate(gate_.data(), rows, f), up(up_.data(), rows, f);

  cpu::rms_norm(x_.data(), w.attn_norm.data(), rows, h, config_.rms_eps, xn_.data());
  q.noalias() = xn * weight(w.wq, h, h);
  k.noalias() = xn * weight(w.wk, h, kv);
  v.noalias() = xn * weight(w.wv, h, kv);
  rotary_.apply(q_.data(), rows, h, config_.heads, positions_.data());
  rotary_.apply(k_.data(), rows, kv, config_.kv_heads, positions_.data());
  attention();
  x.noalias() += attn * weight(w.wo, h, h);

  cpu::rms_norm(x_.data(), w.mlp_norm.data(), rows, h, config_.rms_eps, xn_.data());
  gate.noalias() = xn * weight(w.w_gate, h, f);
  up.noalias() = xn * weight(w.w_up, h, f);
  cpu::silu_mul(gate_.data(), up_.data(), static_cast<std::int64_t>(rows) * f);
  x.noalias() += gate * weight(w.w_down, f, h);
}

// Stores this layer's new K and V rows in their blocks, then attends each sequence's new tokens
// over its positions so far, block by block as its table lists them.
void CpuBackend::attend_cached(int layer, const std::vector<StepSequence>& batch) {
  const int kv = config_.kv_dim();
  const std::size_t row_bytes = sizeof(float) * static_cast<std::size_t>(kv);
  for (int r = 0; r < first_row_[batch.size()]; ++r) {
    const std::size_t at = floats(offset_of_[static_cast<std::size_t>(r)], kv);
    std::memcpy(cache_.keys(block_of_[static_cast<std::size_t>(r)], layer) + at, k_.data() + floats(r, kv), row_bytes);
    std::memcpy(cache_.values(block_of_[static_cast<std::size_t>(r)], layer) + at, v_.data() + floats(r, kv), row_bytes);
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const StepSequence& s = batch[i];
    const std::int32_t kv_len = s.cached + static_cast<std::int32_t>(s.tokens.size());
    int count = 0;
    for (std::int32_t start = 0; start < kv_len; start += cache_.block_tokens()) {
      const std::int32_t b = s.blocks[static_cast<std::size_t>(count)];
      const std::int32_t n = std::min(cache_.block_tokens(), kv_len - start);
      segments_[static_cast<std::size_t>(count++)] = {cache_.keys(b, layer), cache_.values(b, layer), start, n};
    }
    const int row = first_row_[i];
    cpu::attend(shape_, q_.data() + floats(row, config_.hidden), static_cast<int>(s.tokens.size()), s.cached,
                /*causal=*/true, kv_len, segments_.data(), count, scores_.data(),
                attn_.data() + floats(row, config_.hidden));
  }
}

void CpuBackend::sample(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next_tokens) {
  const int h = config_.hidden;
  int sampled = 0;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].sample) continue;
    const int last_row = first_row_[i + 1] - 1;
    std::memcpy(sampled_.data() + floats(sampled++, h), x_.data() + floats(last_row, h), sizeof(float) * h);
  }
  cpu::rms_norm(sampled_.data(), weights_.final_norm.data(), sampled, h, config_.rms_eps, sampled_.data());
  logits_.resize(floats(sampled, config_.vocab));
  MatrixMap logits(logits_.data(), sampled, config_.vocab);
  logits.noalias() = MatrixMap(sampled_.data(), sampled, h) * weight(weights_.lm_head, h, config_.vocab);
  next_tokens.clear();
  for (int s = 0; s < sampled; ++s) next_tokens.push_back(cpu::argmax(logits_.data() + floats(s, config_.vocab), config_.vocab));
}

void CpuBackend::step(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next_tokens) {
  validate(batch);
  append_to_cache(batch);
  const int rows = first_row_[batch.size()];
  for (int layer = 0; layer < config_.layers; ++layer)
    run_layer(layer, rows, [&] { attend_cached(layer, batch); });
  sample(batch, next_tokens);
}

// Sequence i's tokens are prompt_tokens(i, lengths[i], vocab); padding rows hold token 0 and are
// excluded as keys and from the mean, so the result does not depend on padded_length.
std::vector<float> CpuBackend::encode(const std::vector<std::int32_t>& lengths, std::int32_t padded_length) {
  const int n = static_cast<int>(lengths.size());
  if (n == 0) return {};
  const std::int32_t padded = check_encode(lengths, padded_length, config_, limits_, "cpu");
  const int h = config_.hidden, rows = n * padded;
  for (int i = 0; i < n; ++i) {
    std::vector<std::int32_t> tokens = prompt_tokens(static_cast<RequestId>(i), lengths[i], config_.vocab);
    tokens.resize(static_cast<std::size_t>(padded), 0);
    embed(tokens.data(), padded, x_.data() + floats(i * padded, h));
    for (int j = 0; j < padded; ++j) positions_[static_cast<std::size_t>(i * padded + j)] = j;
  }
  for (int layer = 0; layer < config_.layers; ++layer) {
    run_layer(layer, rows, [&] {
      for (int i = 0; i < n; ++i) {
        const int row = i * padded;
        const cpu::KvSegment keys{k_.data() + floats(row, config_.kv_dim()), v_.data() + floats(row, config_.kv_dim()), 0,
                                  lengths[i]};
        cpu::attend(shape_, q_.data() + floats(row, h), padded, 0, /*causal=*/false, lengths[i], &keys, 1,
                    scores_.data(), attn_.data() + floats(row, h));
      }
    });
  }
  std::vector<float> means(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    float* first = xn_.data() + floats(i * padded, h);
    cpu::rms_norm(x_.data() + floats(i * padded, h), weights_.final_norm.data(), lengths[i], h, config_.rms_eps, first);
    means[static_cast<std::size_t>(i)] =
        static_cast<float>(MatrixMap(first, lengths[i], h).cast<double>().sum() / (static_cast<double>(lengths[i]) * h));
  }
  return means;
}

}  // namespace

void CpuBackend::copy_kv(const KvTransfers& copies) {
  check_copies(copies, limits_, "cpu");
  const std::size_t n = cache_.block_floats();
  for (const KvCopy& c : copies.stores) {
    std::copy_n(cache_.block(c.block), n, host_tier_.data() + static_cast<std::size_t>(c.host_block) * n);
  }
  for (const KvCopy& c : copies.loads) {
    std::copy_n(host_tier_.data() + static_cast<std::size_t>(c.host_block) * n, n, cache_.block(c.block));
  }
}

std::unique_ptr<Backend> make_cpu_backend(const TransformerConfig& config, const BackendLimits& limits) {
  if (limits.kv_blocks <= 0 || limits.block_tokens <= 0 || limits.max_batch_tokens <= 0 ||
      limits.max_batch_sequences <= 0)
    throw Error("cpu backend: kv_blocks, block_tokens, max_batch_tokens and max_batch_sequences must be > 0");
  if (limits.kv_blocks > INT32_MAX) throw Error("cpu backend: kv_blocks must be < 2^31");
  if (limits.host_kv_blocks < 0 || limits.host_kv_blocks > INT32_MAX) {
    throw Error("cpu backend: host_kv_blocks must be in [0, 2^31)");
  }
  if (config.layers <= 0 || config.heads <= 0 || config.kv_heads <= 0 || config.hidden % config.heads != 0 ||
      config.heads % config.kv_heads != 0 || config.head_dim() % 2 != 0 || config.vocab <= 0 ||
      config.ffn_hidden <= 0 || config.max_context <= 0)
    throw Error("cpu backend: inconsistent transformer sizes (see TransformerConfig::from_model's checks)");
  return std::make_unique<CpuBackend>(config, limits);
}

}  // namespace twinfer::runtime
