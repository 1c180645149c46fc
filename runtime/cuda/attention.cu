// Attention kernels: one thread block per (token, head). Scores of all keys sit in shared memory, so
// the softmax is exact and numerically stable (max subtracted) in two passes over the keys.
#include <algorithm>
#include <cstddef>

#include "runtime/cuda/block_reduce.cuh"
#include "runtime/cuda/kernels.h"

namespace twinfer::runtime::kernels {
namespace {

constexpr int kAttentionThreads = 128;

// Keys of sequence `seq` through its block table; token t sees positions 0..positions[t].
struct PagedKeys {
  PagedKv cache;
  int layer;
  const int* token_seq;
  const int* positions;

  __device__ int sequence(int token) const { return token_seq[token]; }
  __device__ int count(int token, int seq) const { return positions[token] + 1; }
  __device__ const float* at(int seq, int key, int which) const {
    const int block = cache.block_tables[static_cast<std::size_t>(seq) * cache.max_blocks_per_seq +
                                         key / cache.block_tokens];
    const int slot = key % cache.block_tokens;
    const std::size_t base =
        ((static_cast<std::size_t>(block) * cache.layers + layer) * 2 + which) * cache.block_tokens;
    return cache.pool + (base + slot) * cache.kv_dim;
  }
};

// Keys of sequence `seq` in contiguous [sequences*padded][kv_dim] buffers; padding is masked out.
struct DenseKeys {
  const float* k;
  const float* v;
  const int* lengths;
  int padded;
  int kv_dim;

  __device__ int sequence(int token) const { return token / padded; }
  __device__ int count(int token, int seq) const { return lengths[seq]; }
  __device__ const float* at(int seq, int key, int which) const {
    const float* base = which == 0 ? k : v;
    return base + (static_cast<std::size_t>(seq) * padded + key) * kv_dim;
  }
};

// Shared memory: q [head_dim], partial sums [max(threads, head_dim)], reduction scratch [32],
// scores [max_keys].
template <typename Keys>
__global__ void attention_kernel(const float* q, Keys keys, AttentionShape shape, float* out) {
  extern __shared__ float shared[];
  const int token = blockIdx.x;
  const int head = blockIdx.y;
  const int head_dim = shape.head_dim;
  const int hidden = shape.heads * head_dim;
  const int kv_offset = (head / (shape.heads / shape.kv_heads)) * head_dim;
  const int seq = keys.sequence(token);
  const int key_count = keys.count(token, seq);
  float* q_head = shared;
  float* partial = q_head + head_dim;
  float* scratch = partial + max(static_cast<int>(blockDim.x), head_dim);
  float* scores = scratch + 32;

  const float* q_row = q + static_cast<std::size_t>(token) * hidden + head * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) q_head[d] = q_row[d];
  __syncthreads();

  const float scale = 1.f / sqrtf(static_cast<float>(head_dim));
  float local_max = -INFINITY;
  for (int key = threadIdx.x; key < key_count; key += blockDim.x) {
    const float* k_row = keys.at(seq, key, 0) + kv_offset;
    float dot = 0.f;
    for (int d = 0; d < head_dim; ++d) dot += q_head[d] * k_row[d];
    scores[key] = dot * scale;
    local_max = fmaxf(local_max, scores[key]);
  }
  const float max_score = block_reduce(local_max, scratch, MaxOp(), -INFINITY);
  float local_sum = 0.f;
  for (int key = threadIdx.x; key < key_count; key += blockDim.x) {
    scores[key] = expf(scores[key] - max_score);
    local_sum += scores[key];
  }
  const float sum = block_reduce(local_sum, scratch, SumOp(), 0.f);  // also publishes scores[]

  // Threads split as `lanes` output dimensions times `groups` interleaved subsets of the keys.
  const int lanes = min(head_dim, static_cast<int>(blockDim.x));
  const int groups = blockDim.x / lanes;
  const int lane = threadIdx.x % lanes;
  const int group = threadIdx.x / lanes;
  float* out_row = out + static_cast<std::size_t>(token) * hidden + head * head_dim;
  const float inv_sum = key_count > 0 ? 1.f / sum : 0.f;
  for (int d0 = 0; d0 < head_dim; d0 += lanes) {
    const int d = d0 + lane;
    float acc = 0.f;
    if (group < groups && d < head_dim) {
      for (int key = group; key < key_count; key += groups) acc += scores[key] * keys.at(seq, key, 1)[kv_offset + d];
    }
    __syncthreads();
    if (group < groups) partial[group * lanes + lane] = acc;
    __syncthreads();
    if (group == 0 && d < head_dim) {
      float total = 0.f;
      for (int g = 0; g < groups; ++g) total += partial[g * lanes + lane];
      out_row[d] = total * inv_sum;
    }
  }
}

}  // namespace

std::size_t attention_shared_bytes(int head_dim, int max_keys) {
  const std::size_t floats = static_cast<std::size_t>(head_dim) + std::max(kAttentionThreads, head_dim) + 32 +
                             static_cast<std::size_t>(max_keys);
  return floats * sizeof(float);
}

cudaError_t allow_attention_shared_bytes(std::size_t bytes) {
  const int value = static_cast<int>(bytes);
  cudaError_t status =
      cudaFuncSetAttribute(attention_kernel<PagedKeys>, cudaFuncAttributeMaxDynamicSharedMemorySize, value);
  if (status != cudaSuccess) return status;
  return cudaFuncSetAttribute(attention_kernel<DenseKeys>, cudaFuncAttributeMaxDynamicSharedMemorySize, value);
}

void paged_attention(const float* q, const int* token_seq, const int* positions, int tokens_count,
                     const PagedKv& cache, int layer, const AttentionShape& shape, int max_keys, float* out,
                     cudaStream_t stream) {
  if (tokens_count == 0) return;
  const dim3 grid(tokens_count, shape.heads);
  const PagedKeys keys{cache, layer, token_seq, positions};
  attention_kernel<<<grid, kAttentionThreads, attention_shared_bytes(shape.head_dim, max_keys), stream>>>(
      q, keys, shape, out);
}

void dense_attention(const float* q, const float* k, const float* v, const int* lengths, int sequences,
                     int padded, const AttentionShape& shape, float* out, cudaStream_t stream) {
  if (sequences == 0 || padded == 0) return;
  const dim3 grid(sequences * padded, shape.heads);
  const DenseKeys keys{k, v, lengths, padded, shape.kv_heads * shape.head_dim};
  attention_kernel<<<grid, kAttentionThreads, attention_shared_bytes(shape.head_dim, padded), stream>>>(
      q, keys, shape, out);
}

}  // namespace twinfer::runtime::kernels
