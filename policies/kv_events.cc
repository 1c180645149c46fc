#include "policies/kv_events.h"

#include <atomic>
#include <chrono>
#include <random>

namespace twinfer {

std::uint64_t new_kv_event_log_id() {
  static std::atomic<std::uint64_t> counter{0};
  static const std::uint64_t process = [] {
    std::random_device device;
    const auto now = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    return ((std::uint64_t{device()} << 32) ^ device() ^ now) | 1;
  }();
  // Odd multiplier: distinct counters give distinct ids; never 0 (0 is a cursor that read nothing).
  const std::uint64_t id = process + 0x9E3779B97F4A7C15ULL * ++counter;
  return id == 0 ? 1 : id;
}

void KvEventLog::append(const KvEvent& e) {
  switch (e.kind) {
    case KvEventKind::kStored:
      keys_.insert(e.key);
      break;
    case KvEventKind::kRemoved:
      keys_.erase(e.key);
      break;
    case KvEventKind::kCleared:
      keys_.clear();
      break;
  }
  events_.push_back(e);
  while (events_.size() > keep_) {
    events_.pop_front();
    ++first_;
  }
}

bool KvEventLog::read(KvEventCursor& cursor, std::vector<KvEvent>& out) const {
  const bool follows = cursor.log == id_ && cursor.next >= first_ && cursor.next <= end();
  if (follows) {
    out.insert(out.end(), events_.begin() + static_cast<std::ptrdiff_t>(cursor.next - first_), events_.end());
  } else {
    out.push_back(KvEvent{0, KvEventKind::kCleared});
    for (std::uint64_t key : keys_) out.push_back(KvEvent{key, KvEventKind::kStored});
  }
  cursor = KvEventCursor{id_, end()};
  return follows;
}

}  // namespace twinfer
