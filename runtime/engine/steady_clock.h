// The runtime's clock: microseconds of std::chrono::steady_clock since the clock was made.
#pragma once

#include <chrono>

#include "policies/clock.h"

namespace twinfer::runtime {

// Thread safety: now_us() and at() may be called from any thread (but see reset()).
class SteadyClock : public Clock {
 public:
  SteadyClock() : start_(std::chrono::steady_clock::now()) {}
  TimeUs now_us() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start_).count();
  }
  // Makes now the new zero. REQUIRES: no other thread reads the clock meanwhile.
  void reset() { start_ = std::chrono::steady_clock::now(); }
  // The steady_clock time point of `t_us` on this clock, for sleeping until it.
  std::chrono::steady_clock::time_point at(TimeUs t_us) const { return start_ + std::chrono::microseconds(t_us); }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace twinfer::runtime
