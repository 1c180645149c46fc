// A minimum over the keys of n positions (workers) that also finds the first position at or after
// a given one whose key is at most a bound, both in O(log n): the index a least-loaded router keeps
// instead of scanning every worker per decision.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace twinfer {

class MinTree {
 public:
  static constexpr std::int64_t kNone = std::numeric_limits<std::int64_t>::max();

  // n positions, every key kNone.
  void reset(std::size_t n) {
    n_ = n;
    leaves_ = 1;
    while (leaves_ < n) leaves_ *= 2;
    tree_.assign(2 * leaves_, kNone);
  }
  std::size_t size() const { return n_; }

  void set(std::size_t i, std::int64_t key) {
    std::size_t node = leaves_ + i;
    tree_[node] = key;
    for (node /= 2; node >= 1; node /= 2) {
      const std::int64_t m = tree_[2 * node] < tree_[2 * node + 1] ? tree_[2 * node] : tree_[2 * node + 1];
      if (tree_[node] == m) break;  // the minimum above does not change
      tree_[node] = m;
    }
  }
  std::int64_t key(std::size_t i) const { return tree_[leaves_ + i]; }
  std::int64_t min() const { return tree_[1]; }

  // The first position >= from whose key is <= bound; -1 if none.
  std::int64_t first_at_or_after(std::size_t from, std::int64_t bound) const {
    if (from >= n_) return -1;
    return first(1, 0, leaves_, from, bound);
  }

 private:
  std::int64_t first(std::size_t node, std::size_t lo, std::size_t hi, std::size_t from, std::int64_t bound) const {
    if (hi <= from || tree_[node] > bound) return -1;
    if (hi - lo == 1) return static_cast<std::int64_t>(lo);
    const std::size_t mid = lo + (hi - lo) / 2;
    const std::int64_t left = first(2 * node, lo, mid, from, bound);
    return left >= 0 ? left : first(2 * node + 1, mid, hi, from, bound);
  }

  std::size_t n_ = 0;
  std::size_t leaves_ = 1;
  std::vector<std::int64_t> tree_{kNone, kNone};
};

}  // namespace twinfer
