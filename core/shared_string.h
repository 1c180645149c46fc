// An immutable string shared by reference count: the model and session names of requests. Eight
// bytes where a std::string takes thirty-two, and one copy of each name however many requests carry
// it (readers intern through SharedStrings). Copies are safe across threads; the text never changes.
#pragma once

#include <atomic>
#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace twinfer {

class SharedString {
 public:
  SharedString() noexcept = default;
  // Implicit, as a std::string would be: the empty string holds nothing.
  SharedString(std::string_view text) : rep_(text.empty() ? nullptr : new Rep{{1}, std::string(text)}) {}
  SharedString(const std::string& text) : SharedString(std::string_view(text)) {}
  SharedString(const char* text) : SharedString(std::string_view(text)) {}
  SharedString(const SharedString& other) noexcept : rep_(other.rep_) {
    if (rep_) rep_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  SharedString(SharedString&& other) noexcept : rep_(std::exchange(other.rep_, nullptr)) {}
  SharedString& operator=(SharedString other) noexcept {
    std::swap(rep_, other.rep_);
    return *this;
  }
  ~SharedString() {
    if (rep_ && rep_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete rep_;
  }

  const std::string& str() const noexcept { return rep_ ? rep_->text : empty_text(); }
  operator const std::string&() const noexcept { return str(); }
  bool empty() const noexcept { return rep_ == nullptr; }
  std::size_t size() const noexcept { return str().size(); }
  const char* c_str() const noexcept { return str().c_str(); }

  friend bool operator==(const SharedString& a, const SharedString& b) noexcept {
    return a.rep_ == b.rep_ || a.str() == b.str();
  }
  friend bool operator==(const SharedString& a, const std::string& b) noexcept { return a.str() == b; }
  friend bool operator==(const std::string& a, const SharedString& b) noexcept { return a == b.str(); }
  friend bool operator==(const SharedString& a, const char* b) noexcept { return a.str() == b; }
  friend bool operator!=(const SharedString& a, const SharedString& b) noexcept { return !(a == b); }
  friend bool operator!=(const SharedString& a, const std::string& b) noexcept { return !(a == b); }
  friend bool operator!=(const std::string& a, const SharedString& b) noexcept { return !(a == b); }
  friend bool operator!=(const SharedString& a, const char* b) noexcept { return !(a == b); }
  friend bool operator<(const SharedString& a, const SharedString& b) noexcept { return a.str() < b.str(); }
  friend std::ostream& operator<<(std::ostream& os, const SharedString& s) { return os << s.str(); }

 private:
  struct Rep {
    std::atomic<std::size_t> refs;
    std::string text;
  };
  static const std::string& empty_text() noexcept {
    static const std::string empty;
    return empty;
  }
  Rep* rep_ = nullptr;
};

// Hands out one SharedString per distinct text, for readers of traces where thousands of requests
// name the same model or session. Not thread-safe.
class SharedStrings {
 public:
  SharedString operator()(std::string_view text) {
    if (text.empty()) return {};
    auto it = known_.find(text);
    if (it != known_.end()) return it->second;
    SharedString s(text);
    known_.emplace(std::string_view(s.str()), s);  // the key views the shared text, which s keeps alive
    return s;
  }

 private:
  std::unordered_map<std::string_view, SharedString> known_;
};

}  // namespace twinfer
