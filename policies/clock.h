// The only way anything in the policy layer learns the time (STYLE.md rule 2).
#pragma once

#include "core/time.h"

namespace twinfer {

// Simulated clock in sim/, steady clock in runtime/, ManualClock in tests.
// Thread safety: implementations say so; the simulator's is single-threaded.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeUs now_us() const = 0;
};

// A clock that moves only when told to. Used by tests and by single-threaded drivers that advance
// time themselves.
class ManualClock : public Clock {
 public:
  explicit ManualClock(TimeUs start_us = 0) : now_(start_us) {}
  TimeUs now_us() const override { return now_; }
  void set(TimeUs t_us) { now_ = t_us; }
  void advance(TimeUs delta_us) { now_ += delta_us; }

 private:
  TimeUs now_;
};

}  // namespace twinfer
