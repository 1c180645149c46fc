// Indexes that routers keep over the workers' views instead of scanning every worker per
// decision: one structure per requested model, kept up to date from ClusterView::changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "policies/cluster_view.h"
#include "policies/routers/min_tree.h"

namespace twinfer {

// True when worker `w` is a first choice for requests of `model`: eligible and healthy (not
// suspect). collect_candidates() falls back to suspect workers only when no worker is a first choice.
inline bool first_choice(const WorkerView& w, const std::string& model) {
  return w.health == Health::kUp && eligible(w, model);
}

// One `Entry` per requested model ("" for any), each over all the view's workers. Entry needs
// reset(n) and update(worker, view, model). Built from the view when first asked for (or when the
// number of workers changes); each get() first applies the workers the view says changed.
template <class Entry>
class ModelIndex {
 public:
  // The entry for `model`, up to date with `view`; null when the view offers no change list (the
  // runtime's), so the caller scans. REQUIRES: every call with a change list is one consumer's.
  Entry* get(const ClusterView& view, const std::string& model) {
    if (view.changes == nullptr) return nullptr;
    if (workers_ != view.size()) {
      entries_.clear();
      workers_ = view.size();
      view.changes->take([](int) {});  // every entry is built afresh from the view
    } else {
      view.changes->take([&](int w) {
        for (auto& [name, entry] : entries_) entry.update(std::size_t(w), view, name);
      });
    }
    auto it = entries_.find(model);
    if (it == entries_.end()) {
      it = entries_.emplace(model, Entry{}).first;
      it->second.reset(view.size());
      for (std::size_t w = 0; w < view.size(); ++w) it->second.update(w, view, it->first);
    }
    return &it->second;
  }

 private:
  std::size_t workers_ = 0;
  std::unordered_map<std::string, Entry> entries_;
};

// The first-choice workers for a model as a set that counts them and finds the k-th in index order
// in O(log n) (a Fenwick tree over 0/1 flags): collect_candidates()'s list without building it.
class CandidateSet {
 public:
  void reset(std::size_t n) {
    in_.assign(n, 0);
    tree_.assign(n + 1, 0);
    count_ = 0;
    top_ = 1;
    while (top_ * 2 < tree_.size()) top_ *= 2;
  }
  void update(std::size_t w, const ClusterView& view, const std::string& model) {
    const std::uint8_t now = first_choice(view[w], model) ? 1 : 0;
    if (now == in_[w]) return;
    in_[w] = now;
    const std::int64_t delta = now ? 1 : -1;
    count_ += delta;
    for (std::size_t i = w + 1; i < tree_.size(); i += i & (~i + 1)) tree_[i] += delta;
  }
  std::size_t count() const { return static_cast<std::size_t>(count_); }
  // The k-th candidate (0-based) in index order. REQUIRES: k < count().
  int kth(std::size_t k) const {
    std::size_t pos = 0;
    auto remaining = static_cast<std::int64_t>(k) + 1;
    for (std::size_t step = top_; step > 0; step /= 2) {
      if (pos + step < tree_.size() && tree_[pos + step] < remaining) {
        pos += step;
        remaining -= tree_[pos];
      }
    }
    return static_cast<int>(pos);  // the 1-based position pos + 1, as a 0-based worker index
  }

 private:
  std::vector<std::uint8_t> in_;
  std::vector<std::int64_t> tree_;  // 1-based Fenwick tree
  std::int64_t count_ = 0;
  std::size_t top_ = 1;  // the largest power of two below tree_.size(): kth()'s first step
};

// The first-choice workers' outstanding requests (MinTree::kNone for the others), for the
// least-outstanding pick.
struct OutstandingTree {
  MinTree tree;
  void reset(std::size_t n) { tree.reset(n); }
  void update(std::size_t w, const ClusterView& view, const std::string& model) {
    tree.set(w, first_choice(view[w], model) ? view[w].outstanding() : MinTree::kNone);
  }
};

}  // namespace twinfer
