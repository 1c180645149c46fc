// A map from request ids to values, for the per-request state that every step looks up: values
// live in a deque (stable addresses, reused after erase) and ids find them through a small
// open-addressing table (linear probing, backward-shift deletion) that stays in cache, where a
// node-based hash map cost a cache miss per lookup.
#pragma once

#include <cassert>
#include <cstdint>
#include <deque>
#include <vector>

#include "core/request.h"

namespace twinfer {

template <class T>
class IdTable {
 public:
  T* find(RequestId id) {
    const std::size_t i = position(id);
    return i == kNone ? nullptr : &values_[table_[i].slot];
  }
  const T* find(RequestId id) const { return const_cast<IdTable*>(this)->find(id); }

  // A default-constructed value for `id`. REQUIRES: id is absent.
  T& emplace(RequestId id) {
    assert(find(id) == nullptr && "id inserted twice");
    if ((size_ + 1) * 2 > table_.size()) rehash(table_.empty() ? 16 : table_.size() * 2);
    std::uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
      values_[slot] = T();
    } else {
      slot = static_cast<std::uint32_t>(values_.size());
      values_.emplace_back();
    }
    std::size_t i = home(id);
    while (table_[i].id != kEmpty) i = (i + 1) & mask();
    table_[i] = {id, slot};
    ++size_;
    return values_[slot];
  }

  // REQUIRES: id is present. Its value is destroyed (reset) and its storage reused later.
  void erase(RequestId id) {
    std::size_t i = position(id);
    assert(i != kNone && "erasing an absent id");
    values_[table_[i].slot] = T();
    free_.push_back(table_[i].slot);
    // Backward-shift deletion: move later entries of the probe run into the hole.
    for (std::size_t j = (i + 1) & mask();; j = (j + 1) & mask()) {
      if (table_[j].id == kEmpty) break;
      const std::size_t h = home(table_[j].id);
      // Entry j may fill hole i unless its home lies cyclically in (i, j].
      const bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
      if (stays) continue;
      table_[i] = table_[j];
      i = j;
    }
    table_[i].id = kEmpty;
    --size_;
  }

  void clear() {
    for (auto& e : table_) e.id = kEmpty;
    values_.clear();
    free_.clear();
    size_ = 0;
  }

  std::size_t size() const { return size_; }

 private:
  struct Entry {
    RequestId id;
    std::uint32_t slot;
  };
  static constexpr RequestId kEmpty = ~RequestId{0};
  static constexpr std::size_t kNone = ~std::size_t{0};

  std::size_t mask() const { return table_.size() - 1; }
  std::size_t home(RequestId id) const {
    return static_cast<std::size_t>((static_cast<std::uint64_t>(id) * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  std::size_t position(RequestId id) const {
    if (table_.empty()) return kNone;
    for (std::size_t i = home(id);; i = (i + 1) & mask()) {
      if (table_[i].id == id) return i;
      if (table_[i].id == kEmpty) return kNone;
    }
  }
  void rehash(std::size_t capacity) {
    std::vector<Entry> old(capacity, Entry{kEmpty, 0});
    old.swap(table_);
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
    for (const Entry& e : old) {
      if (e.id == kEmpty) continue;
      std::size_t i = home(e.id);
      while (table_[i].id != kEmpty) i = (i + 1) & mask();
      table_[i] = e;
    }
  }

  std::vector<Entry> table_;  // a power of two in size, at most half full
  int shift_ = 64;
  std::deque<T> values_;
  std::vector<std::uint32_t> free_;
  std::size_t size_ = 0;
};

}  // namespace twinfer
