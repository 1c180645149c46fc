// Actions run at given times on the host-wide monotonic clock (runtime/rpc/wire.h), by one thread:
// the router's retries after a backoff and its request time limits.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "core/time.h"

namespace twinfer::runtime {

// Thread safety: every method may be called from any thread, actions included.
class TimerQueue {
 public:
  TimerQueue();
  ~TimerQueue();  // stop()

  // Runs `action` on the queue's thread at monotonic time `at_us` (at once if past), after the
  // actions due earlier or added earlier for the same time. Ignored after stop().
  void at(TimeUs at_us, std::function<void()> action);
  // Drops the actions not yet run and joins the thread. Idempotent.
  void stop();
  std::size_t pending() const;

 private:
  void loop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<TimeUs, std::function<void()>> due_;  // guarded by mu_; equal keys keep insertion order
  bool stopping_ = false;                              // guarded by mu_
  std::thread thread_;
};

}  // namespace twinfer::runtime
