// The CPU backend's kernels on float32 row-major buffers: RMSNorm, rotary embeddings, SwiGLU,
// attention over a list of key/value segments, greedy sampling. None allocates.
//
// Conventions shared with every backend (the outputs of backends are compared):
//   rms_norm(x) = x * w / sqrt(mean(x^2) + eps)
//   rotary: within each head, the pair (2i, 2i+1) rotates by pos * theta^(-2i / head_dim)
//   attention: softmax(q k^T / sqrt(head_dim)) v; query head h reads KV head h / (heads / kv_heads)
//   silu(g) = g / (1 + exp(-g)); argmax takes the lowest index on ties
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Core>

namespace twinfer::runtime::cpu {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<RowMatrix>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using StridedMap = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;
using ConstStridedMap = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;

// out[r] = rms_norm(x[r]) * weight for `rows` rows of `cols` floats. out may equal x.
void rms_norm(const float* x, const float* weight, int rows, int cols, float eps, float* out);

// gate[i] = silu(gate[i]) * up[i].
void silu_mul(float* gate, const float* up, std::int64_t count);

// Index of the largest of x[0..n), the lowest one on ties.
std::int32_t argmax(const float* x, int n);

// cos and sin of every (position, pair) up to max_positions, computed once.
class RotaryTable {
 public:
  RotaryTable(int max_positions, int head_dim, float theta);
  // Rotates `heads` heads of each of `rows` rows (row r at positions[r], rows `row_stride` floats
  // apart). REQUIRES: 0 <= positions[r] < max_positions.
  void apply(float* x, int rows, int row_stride, int heads, const std::int32_t* positions) const;

 private:
  int pairs_;
  std::vector<float> cos_;  // [position][pair]
  std::vector<float> sin_;
};

// Keys and values of positions [start, start + count): rows of kv_dim floats.
struct KvSegment {
  const float* keys = nullptr;
  const float* values = nullptr;
  std::int32_t start = 0;
  std::int32_t count = 0;
};

struct AttentionShape {
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
};

// Query rows per tile: the scores workspace holds kAttentionQueryTile rows of the longest key range.
constexpr int kAttentionQueryTile = 64;

// Attention of `queries` query rows (all heads, rows heads*head_dim floats apart) over keys
// [0, kv_len) given as ordered segments. With `causal`, query i (at absolute position
// first_query_position + i) sees keys up to its own position; otherwise all kv_len keys. Writes
// rows of heads*head_dim floats to out. `scores` holds kAttentionQueryTile * kv_len floats.
void attend(const AttentionShape& shape, const float* q, int queries, std::int32_t first_query_position,
            bool causal, std::int32_t kv_len, const KvSegment* segments, int segment_count, float* scores,
            float* out);

}  // namespace twinfer::runtime::cpu
