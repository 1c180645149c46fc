#include "runtime/cpu/cpu_kernels.h"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace twinfer::runtime::cpu {

void rms_norm(const float* x, const float* weight, int rows, int cols, float eps, float* out) {
  Eigen::Map<const Eigen::RowVectorXf> w(weight, cols);
  for (int r = 0; r < rows; ++r) {
    Eigen::Map<const Eigen::RowVectorXf> in(x + static_cast<std::int64_t>(r) * cols, cols);
    Eigen::Map<Eigen::RowVectorXf> o(out + static_cast<std::int64_t>(r) * cols, cols);
    const float inv_rms = 1.0f / std::sqrt(in.squaredNorm() / static_cast<float>(cols) + eps);
    o = (in * inv_rms).cwiseProduct(w);
  }
}

void silu_mul(float* gate, const float* up, std::int64_t count) {
  Eigen::Map<Eigen::ArrayXf> g(gate, count);
  Eigen::Map<const Eigen::ArrayXf> u(up, count);
  g = g / (1.0f + (-g).exp()) * u;
}

std::int32_t argmax(const float* x, int n) {
  std::int32_t best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

// Angles in double so that long positions keep their precision before the float cos/sin.
RotaryTable::RotaryTable(int max_positions, int head_dim, float theta)
    : pairs_(head_dim / 2),
      cos_(static_cast<std::size_t>(max_positions) * pairs_),
      sin_(static_cast<std::size_t>(max_positions) * pairs_) {
  for (int pos = 0; pos < max_positions; ++pos) {
    for (int i = 0; i < pairs_; ++i) {
      const double angle = pos * std::pow(static_cast<double>(theta), -2.0 * i / head_dim);
      cos_[static_cast<std::size_t>(pos) * pairs_ + i] = static_cast<float>(std::cos(angle));
      sin_[static_cast<std::size_t>(pos) * pairs_ + i] = static_cast<float>(std::sin(angle));
    }
  }
}

void RotaryTable::apply(float* x, int rows, int row_stride, int heads, const std::int32_t* positions) const {
  for (int r = 0; r < rows; ++r) {
    const float* c = cos_.data() + static_cast<std::size_t>(positions[r]) * pairs_;
    const float* s = sin_.data() + static_cast<std::size_t>(positions[r]) * pairs_;
    float* row = x + static_cast<std::int64_t>(r) * row_stride;
    for (int h = 0; h < heads; ++h) {
      float* head = row + h * pairs_ * 2;
      for (int i = 0; i < pairs_; ++i) {
        const float a = head[2 * i], b = head[2 * i + 1];
        head[2 * i] = a * c[i] - b * s[i];
        head[2 * i + 1] = a * s[i] + b * c[i];
      }
    }
  }
}

namespace {

// Row i of `probs` holds raw scores of its first `visible` keys; turns them into the softmax of
// scale * score (shifted by the row maximum, so exp never overflows) and zeroes the masked rest.
void softmax_rows(MatrixMap& probs, float scale, std::int32_t first_visible, bool causal) {
  for (Eigen::Index i = 0; i < probs.rows(); ++i) {
    const Eigen::Index visible = causal ? std::min<Eigen::Index>(first_visible + i, probs.cols()) : probs.cols();
    auto row = probs.row(i);
    auto live = row.head(visible).array();
    const float max_score = live.maxCoeff();
    live = ((live - max_score) * scale).exp();
    live /= live.sum();
    row.tail(probs.cols() - visible).setZero();
  }
}

}  // namespace

void attend(const AttentionShape& shape, const float* q, int queries, std::int32_t first_query_position,
            bool causal, std::int32_t kv_len, const KvSegment* segments, int segment_count, float* scores,
            float* out) {
  const int hd = shape.head_dim;
  const int q_stride = shape.heads * hd;
  const int kv_stride = shape.kv_heads * hd;
  const int group = shape.heads / shape.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int h = 0; h < shape.heads; ++h) {
    const int kv_offset = (h / group) * hd;
    for (int i0 = 0; i0 < queries; i0 += kAttentionQueryTile) {
      const int rows = std::min(kAttentionQueryTile, queries - i0);
      // A causal tile needs only the keys its last query sees.
      const std::int32_t keys = causal ? std::min(kv_len, first_query_position + i0 + rows) : kv_len;
      assert(keys > 0);
      MatrixMap probs(scores, rows, keys);
      ConstStridedMap q_tile(q + static_cast<std::int64_t>(i0) * q_stride + h * hd, rows, hd,
                             Eigen::OuterStride<>(q_stride));
      for (int s = 0; s < segment_count && segments[s].start < keys; ++s) {
        const std::int32_t count = std::min(segments[s].count, keys - segments[s].start);
        ConstStridedMap k(segments[s].keys + kv_offset, count, hd, Eigen::OuterStride<>(kv_stride));
        probs.middleCols(segments[s].start, count).noalias() = q_tile * k.transpose();
      }
      softmax_rows(probs, scale, first_query_position + i0 + 1, causal);
      StridedMap o(out + static_cast<std::int64_t>(i0) * q_stride + h * hd, rows, hd, Eigen::OuterStride<>(q_stride));
      o.setZero();
      for (int s = 0; s < segment_count && segments[s].start < keys; ++s) {
        const std::int32_t count = std::min(segments[s].count, keys - segments[s].start);
        ConstStridedMap v(segments[s].values + kv_offset, count, hd, Eigen::OuterStride<>(kv_stride));
        o.noalias() += probs.middleCols(segments[s].start, count) * v;
      }
    }
  }
}

}  // namespace twinfer::runtime::cpu
