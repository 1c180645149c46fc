// Element-wise and per-row kernels of the CUDA backend. Each computes what the CPU reference
// computes, in float32 (rotary angles in double, as their size grows with the position).
#include <cstddef>

#include "runtime/cuda/block_reduce.cuh"
#include "runtime/cuda/kernels.h"

namespace twinfer::runtime::kernels {
namespace {

constexpr int kRowThreads = 256;

int blocks_for(std::size_t count, int threads) {
  return static_cast<int>((count + threads - 1) / threads);
}

__global__ void embed_kernel(const int* tokens, const float* embedding, int hidden, float* x) {
  const std::size_t token = blockIdx.x;
  const float* source = embedding + static_cast<std::size_t>(tokens[token]) * hidden;
  for (int d = threadIdx.x; d < hidden; d += blockDim.x) x[token * hidden + d] = source[d];
}

__global__ void rms_norm_kernel(const float* in, const int* rows_map, int hidden, const float* weight, float eps,
                                float* out) {
  __shared__ float scratch[32];
  const std::size_t row = rows_map != nullptr ? rows_map[blockIdx.x] : blockIdx.x;
  const float* x = in + row * hidden;
  float* y = out + static_cast<std::size_t>(blockIdx.x) * hidden;
  float local = 0.f;
  for (int d = threadIdx.x; d < hidden; d += blockDim.x) local += x[d] * x[d];
  const float sum_squares = block_reduce(local, scratch, SumOp(), 0.f);
  const float inv_rms = 1.f / sqrtf(sum_squares / hidden + eps);
  for (int d = threadIdx.x; d < hidden; d += blockDim.x) y[d] = x[d] * inv_rms * weight[d];
}

__global__ void rope_kernel(float* q, float* k, const int* positions, int heads, int kv_heads, int head_dim,
                            float theta) {
  const std::size_t token = blockIdx.x;
  const int half = head_dim / 2;
  const int q_pairs = heads * half;
  const int pairs = (heads + kv_heads) * half;
  const double position = positions[token];
  for (int p = threadIdx.x; p < pairs; p += blockDim.x) {
    const bool is_q = p < q_pairs;
    const int local = is_q ? p : p - q_pairs;
    const int head = local / half;
    const int i = local % half;
    const std::size_t width = static_cast<std::size_t>(is_q ? heads : kv_heads) * head_dim;
    float* pair = (is_q ? q : k) + token * width + head * head_dim + 2 * i;
    const double angle = position * pow(static_cast<double>(theta), -2.0 * i / head_dim);
    const float c = static_cast<float>(cos(angle));
    const float s = static_cast<float>(sin(angle));
    const float x0 = pair[0];
    const float x1 = pair[1];
    pair[0] = x0 * c - x1 * s;
    pair[1] = x0 * s + x1 * c;
  }
}

__global__ void store_kv_kernel(const float* k, const float* v, const int* token_seq, const int* positions,
                                PagedKv cache, int layer) {
  const std::size_t token = blockIdx.x;
  const int position = positions[token];
  const int block = cache.block_tables[static_cast<std::size_t>(token_seq[token]) * cache.max_blocks_per_seq +
                                       position / cache.block_tokens];
  const int slot = position % cache.block_tokens;
  const std::size_t k_base =
      ((static_cast<std::size_t>(block) * cache.layers + layer) * 2 * cache.block_tokens + slot) * cache.kv_dim;
  const std::size_t v_base = k_base + static_cast<std::size_t>(cache.block_tokens) * cache.kv_dim;
  for (int d = threadIdx.x; d < cache.kv_dim; d += blockDim.x) {
    cache.pool[k_base + d] = k[token * cache.kv_dim + d];
    cache.pool[v_base + d] = v[token * cache.kv_dim + d];
  }
}

__global__ void swiglu_kernel(float* gate, const float* up, std::size_t count) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const float g = gate[i];
  gate[i] = g / (1.f + expf(-g)) * up[i];
}

// The better of two (value, index) candidates: larger value, then lower index.
__device__ void keep_best(float& value, int& index, float other_value, int other_index) {
  if (other_value > value || (other_value == value && other_index < index)) {
    value = other_value;
    index = other_index;
  }
}

__global__ void argmax_kernel(const float* logits, int vocab, int* out) {
  __shared__ float best_values[32];
  __shared__ int best_indices[32];
  const float* row = logits + static_cast<std::size_t>(blockIdx.x) * vocab;
  float value = -INFINITY;
  int index = vocab;  // loses every tie against a real index
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) keep_best(value, index, row[i], i);
  for (int offset = 16; offset > 0; offset >>= 1) {
    keep_best(value, index, __shfl_xor_sync(0xffffffffu, value, offset), __shfl_xor_sync(0xffffffffu, index, offset));
  }
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  if (lane == 0) {
    best_values[warp] = value;
    best_indices[warp] = index;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) keep_best(value, index, best_values[w], best_indices[w]);
    out[blockIdx.x] = index < vocab ? index : 0;  // all NaN: token 0
  }
}

__global__ void masked_mean_kernel(const float* x, const int* lengths, int padded, int hidden, float* out) {
  __shared__ float scratch[32];
  const int length = lengths[blockIdx.x];
  const std::size_t count = static_cast<std::size_t>(length) * hidden;
  const float* first = x + static_cast<std::size_t>(blockIdx.x) * padded * hidden;
  float local = 0.f;
  for (std::size_t i = threadIdx.x; i < count; i += blockDim.x) local += first[i];
  const float sum = block_reduce(local, scratch, SumOp(), 0.f);
  if (threadIdx.x == 0) out[blockIdx.x] = count > 0 ? sum / static_cast<float>(count) : 0.f;
}

}  // namespace

void embed(const int* tokens, int tokens_count, const float* embedding, int hidden, float* x, cudaStream_t stream) {
  if (tokens_count == 0) return;
  embed_kernel<<<tokens_count, kRowThreads, 0, stream>>>(tokens, embedding, hidden, x);
}

void rms_norm(const float* in, const int* rows_map, int rows, int hidden, const float* weight, float eps, float* out,
              cudaStream_t stream) {
  if (rows == 0) return;
  rms_norm_kernel<<<rows, kRowThreads, 0, stream>>>(in, rows_map, hidden, weight, eps, out);
}

void rope(float* q, float* k, const int* positions, int tokens_count, int heads, int kv_heads, int head_dim,
          float theta, cudaStream_t stream) {
  if (tokens_count == 0) return;
  rope_kernel<<<tokens_count, kRowThreads, 0, stream>>>(q, k, positions, heads, kv_heads, head_dim, theta);
}

void store_kv(const float* k, const float* v, const int* token_seq, const int* positions, int tokens_count,
              const PagedKv& cache, int layer, cudaStream_t stream) {
  if (tokens_count == 0) return;
  store_kv_kernel<<<tokens_count, kRowThreads, 0, stream>>>(k, v, token_seq, positions, cache, layer);
}

void swiglu(float* gate, const float* up, std::size_t count, cudaStream_t stream) {
  if (count == 0) return;
  swiglu_kernel<<<blocks_for(count, kRowThreads), kRowThreads, 0, stream>>>(gate, up, count);
}

void argmax(const float* logits, int rows, int vocab, int* out, cudaStream_t stream) {
  if (rows == 0) return;
  argmax_kernel<<<rows, kRowThreads, 0, stream>>>(logits, vocab, out);
}

void masked_mean(const float* x, const int* lengths, int sequences, int padded, int hidden, float* out,
                 cudaStream_t stream) {
  if (sequences == 0) return;
  masked_mean_kernel<<<sequences, kRowThreads, 0, stream>>>(x, lengths, padded, hidden, out);
}

}  // namespace twinfer::runtime::kernels
