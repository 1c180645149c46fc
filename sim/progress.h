// A progress bar on stderr for runs longer than a second, shown only when stderr is a terminal.
#pragma once

#include <chrono>
#include <cstddef>

#include "core/time.h"

namespace twinfer::sim {

class Progress {
 public:
  // `enabled` is the user's wish; the bar still stays hidden unless stderr is a terminal.
  Progress(bool enabled, std::size_t total);
  // `done` of `total` requests have arrived; `now_us` is the simulated time. Cheap when hidden.
  void update(std::size_t done, TimeUs now_us);
  // Ends the bar's line, if one was drawn.
  void finish();

 private:
  bool enabled_;
  std::size_t total_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace twinfer::sim
