// SIGINT/SIGTERM handling of the serving processes: received by one thread with sigwait(), so
// that no work happens in a signal handler.
#pragma once

#include <pthread.h>

#include <csignal>
#include <ctime>
#include <functional>

namespace twinfer::runtime {

// Blocks SIGINT and SIGTERM in the calling thread and in every thread it starts afterwards (gRPC's
// among them), so that wait_for_stop_signal() is their only receiver. Call before starting threads.
inline sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Waits for one of `set`'s signals and returns its number.
inline int wait_for_stop_signal(const sigset_t& set) {
  int signal = 0;
  while (sigwait(&set, &signal) != 0) {
  }
  return signal;
}

// Waits for one of `set`'s signals and returns its number, or returns 0 once done() holds (asked
// every poll_ms).
inline int wait_for_stop_signal(const sigset_t& set, const std::function<bool()>& done, int poll_ms = 100) {
  const timespec poll{poll_ms / 1000, long(poll_ms % 1000) * 1000000L};
  for (;;) {
    const int signal = sigtimedwait(&set, nullptr, &poll);
    if (signal > 0) return signal;
    if (done()) return 0;
  }
}

}  // namespace twinfer::runtime
