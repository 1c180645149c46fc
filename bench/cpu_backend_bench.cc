// Throughput of the CPU backend's prefill and decode steps on a ~50M-parameter decoder, beside
// Eigen's plain GEMM on the MLP's shape ([tokens x hidden] x [hidden x ffn_hidden]), the ceiling a
// step can approach. Counter GFLOP/s counts useful FLOPs: weights (2 per multiply-accumulate),
// attention's QK^T and PV over the keys each query sees, and lm_head for sampled tokens.
#include <benchmark/benchmark.h>

#include <Eigen/Core>

#include "runtime/cpu/cpu_backend.h"

namespace twinfer::runtime {
namespace {

// 6 x (q, k, v, o, gate, up, down) = 37.7M, embedding and lm_head 2 x 6.3M: 50.3M parameters.
TransformerConfig bench_config() {
  TransformerConfig c;
  c.layers = 6;
  c.hidden = 768;
  c.heads = 12;
  c.kv_heads = 4;
  c.ffn_hidden = 2048;
  c.vocab = 8192;
  c.max_context = 2048;
  return c;
}

BackendLimits bench_limits() {
  BackendLimits l;
  l.kv_blocks = 2048;
  l.block_tokens = 16;
  l.max_batch_tokens = 1024;
  l.max_batch_sequences = 64;
  return l;
}

// A block table of `count` consecutive pool blocks from `first` (sequences of these benchmarks hold
// disjoint ranges).
std::vector<std::int32_t> table(std::int32_t first, std::int32_t count) {
  std::vector<std::int32_t> blocks(static_cast<std::size_t>(count));
  for (std::int32_t i = 0; i < count; ++i) blocks[static_cast<std::size_t>(i)] = first + i;
  return blocks;
}

// FLOPs of `tokens` new tokens of one sequence that already holds `cached`, one sampled.
double step_flops(const TransformerConfig& c, double cached, double tokens) {
  const double lm_head = 2.0 * c.hidden * c.vocab;
  const double weights = (c.weight_flops_per_token() - lm_head) * tokens + lm_head;
  // Query i (0-based) sees cached + i + 1 keys; QK^T and PV cost 2 * head_dim each per key and head.
  const double keys_seen = tokens * cached + tokens * (tokens + 1) / 2;
  return weights + 4.0 * c.hidden * c.layers * keys_seen;
}

void BM_CpuPrefill(benchmark::State& state) {
  const TransformerConfig config = bench_config();
  auto backend = make_cpu_backend(config, bench_limits());
  const auto tokens = static_cast<std::int32_t>(state.range(0));
  const std::vector<StepSequence> batch = {{1, 0, prompt_tokens(1, tokens, config.vocab), table(0, (tokens + 15) / 16), true}};
  std::vector<std::int32_t> next;
  for (auto _ : state) backend->step(batch, next);
  state.counters["GFLOP/s"] = benchmark::Counter(
      1e-9 * step_flops(config, 0, tokens) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

// `range(0)` sequences decode one token each with contexts from 128 to 255 tokens: when the
// longest reaches 256 they are recomputed from 128 tokens, outside the timing.
void BM_CpuDecode(benchmark::State& state) {
  const TransformerConfig config = bench_config();
  auto backend = make_cpu_backend(config, bench_limits());
  const int sequences = static_cast<int>(state.range(0));
  constexpr std::int32_t kFirstContext = 128, kLastContext = 256;
  std::vector<StepSequence> batch(static_cast<std::size_t>(sequences));
  std::vector<std::int32_t> next;
  auto refill = [&] {
    for (int s = 0; s < sequences; ++s) {
      const std::vector<std::int32_t> blocks = table(s * (kLastContext / 16), kLastContext / 16);
      std::vector<StepSequence> prefill = {{static_cast<RequestId>(s), 0,
                                            prompt_tokens(static_cast<RequestId>(s), kFirstContext, config.vocab),
                                            blocks, true}};
      backend->step(prefill, next);
      batch[static_cast<std::size_t>(s)] = {static_cast<RequestId>(s), kFirstContext, {next[0]}, blocks, true};
    }
  };
  refill();
  double flops = 0;
  for (auto _ : state) {
    if (batch[0].cached == kLastContext) {
      state.PauseTiming();
      refill();
      state.ResumeTiming();
    }
    backend->step(batch, next);
    for (int s = 0; s < sequences; ++s) {
      StepSequence& seq = batch[static_cast<std::size_t>(s)];
      flops += step_flops(config, seq.cached, 1);
      ++seq.cached;
      seq.tokens[0] = next[static_cast<std::size_t>(s)];
    }
  }
  state.counters["GFLOP/s"] = benchmark::Counter(1e-9 * flops, benchmark::Counter::kIsRate);
}

void BM_EigenGemm(benchmark::State& state) {
  Eigen::setNbThreads(1);
  const TransformerConfig config = bench_config();
  using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const auto tokens = static_cast<Eigen::Index>(state.range(0));
  const RowMatrix x = RowMatrix::Random(tokens, config.hidden);
  const RowMatrix w = RowMatrix::Random(config.hidden, config.ffn_hidden);
  RowMatrix y(tokens, config.ffn_hidden);
  for (auto _ : state) {
    y.noalias() = x * w;
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      1e-9 * 2.0 * tokens * config.hidden * config.ffn_hidden * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
}

BENCHMARK(BM_CpuPrefill)->Arg(512)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CpuDecode)->Arg(32)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_EigenGemm)->Arg(512)->Arg(32)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace twinfer::runtime
