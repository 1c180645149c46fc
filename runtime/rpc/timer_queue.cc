#include "runtime/rpc/timer_queue.h"

#include <chrono>

#include "runtime/rpc/wire.h"

namespace twinfer::runtime {

TimerQueue::TimerQueue() : thread_([this] { loop(); }) {}

TimerQueue::~TimerQueue() { stop(); }

void TimerQueue::at(TimeUs at_us, std::function<void()> action) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  due_.emplace(at_us, std::move(action));
  cv_.notify_all();
}

void TimerQueue::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    due_.clear();
    cv_.notify_all();
  }
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

std::size_t TimerQueue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return due_.size();
}

void TimerQueue::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (due_.empty()) {
      cv_.wait(lock);
      continue;
    }
    const TimeUs wait_us = due_.begin()->first - monotonic_now_us();
    if (wait_us > 0) {
      cv_.wait_for(lock, std::chrono::microseconds(wait_us));
      continue;
    }
    std::function<void()> action = std::move(due_.begin()->second);
    due_.erase(due_.begin());
    // Actions take locks of their own and may add timers.
    lock.unlock();
    action();
    lock.lock();
  }
}

}  // namespace twinfer::runtime
