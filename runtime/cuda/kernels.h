// Launchers of the CUDA backend's own kernels. Every launcher enqueues work on `stream` and returns
// at once; none synchronizes or checks for errors (the caller checks once per launch sequence).
// Matrices are row-major float32; a "row" is one token unless said otherwise.
#pragma once

#include <cstddef>

#include <cuda_runtime.h>

namespace twinfer::runtime::kernels {

// x[t][:] = embedding[tokens[t]][:] for t < tokens_count. REQUIRES: every token id < vocab.
void embed(const int* tokens, int tokens_count, const float* embedding, int hidden, float* x,
           cudaStream_t stream);

// out[r] = in[row] * weight / sqrt(mean(in[row]^2) + eps), where row = rows_map[r], or r when
// rows_map is null. `in` and `out` may be the same buffer only without a rows_map.
void rms_norm(const float* in, const int* rows_map, int rows, int hidden, const float* weight, float eps,
              float* out, cudaStream_t stream);

// Rotary embeddings in place on q [tokens][heads*head_dim] and k [tokens][kv_heads*head_dim]:
// pair (2i, 2i+1) of each head turns by positions[t] * theta^(-2i/head_dim) radians.
void rope(float* q, float* k, const int* positions, int tokens_count, int heads, int kv_heads, int head_dim,
          float theta, cudaStream_t stream);

// The paged KV cache: one pool of blocks, each [layers][2 (K, V)][block_tokens][kv_dim] floats.
// Sequence s's token at position p lies in block block_tables[s * max_blocks_per_seq + p / block_tokens],
// slot p % block_tokens.
struct PagedKv {
  float* pool = nullptr;
  const int* block_tables = nullptr;
  int max_blocks_per_seq = 0;
  int block_tokens = 0;
  int layers = 0;
  int kv_dim = 0;
};

// Writes k and v [tokens][kv_dim] of `layer` to the cache at (token_seq[t], positions[t]).
void store_kv(const float* k, const float* v, const int* token_seq, const int* positions, int tokens_count,
              const PagedKv& cache, int layer, cudaStream_t stream);

struct AttentionShape {
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
};

// Causal attention of each token t over positions 0..positions[t] of its sequence token_seq[t] in the
// cache. q and out are [tokens][heads*head_dim]; `max_keys` bounds positions[t] + 1.
void paged_attention(const float* q, const int* token_seq, const int* positions, int tokens_count,
                     const PagedKv& cache, int layer, const AttentionShape& shape, int max_keys, float* out,
                     cudaStream_t stream);

// Bidirectional attention over `sequences` sequences of `padded` tokens each, laid out contiguously in
// q/out [sequences*padded][heads*head_dim] and k/v [sequences*padded][kv_heads*head_dim]: token t of
// sequence s attends to keys 0..lengths[s]-1 of s (padding keys are masked out).
void dense_attention(const float* q, const float* k, const float* v, const int* lengths, int sequences,
                     int padded, const AttentionShape& shape, float* out, cudaStream_t stream);

// Dynamic shared memory of one attention block over up to `max_keys` keys, in bytes.
std::size_t attention_shared_bytes(int head_dim, int max_keys);

// Raises both attention kernels' dynamic shared memory limit to `bytes` (needed above 48 KiB).
cudaError_t allow_attention_shared_bytes(std::size_t bytes);

// gate[i] = silu(gate[i]) * up[i] for i < count.
void swiglu(float* gate, const float* up, std::size_t count, cudaStream_t stream);

// out[r] = index of the largest logits[r][:], the lowest index on ties.
void argmax(const float* logits, int rows, int vocab, int* out, cudaStream_t stream);

// out[s] = mean of x[s*padded + i][d] over i < lengths[s] and d < hidden.
void masked_mean(const float* x, const int* lengths, int sequences, int padded, int hidden, float* out,
                 cudaStream_t stream);

}  // namespace twinfer::runtime::kernels
