#include "sim/progress.h"

#include <unistd.h>

#include <cstdio>

namespace twinfer::sim {

Progress::Progress(bool enabled, std::size_t total)
    : enabled_(enabled && total > 0 && isatty(STDERR_FILENO)), total_(total),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void Progress::update(std::size_t done, TimeUs now_us) {
  // Looking at the wall clock on every arrival would cost more than the arrival itself.
  if (!enabled_ || (done % 1024 != 0 && done != total_)) return;
  auto now = std::chrono::steady_clock::now();
  if (now - start_ < std::chrono::seconds(1) || now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  constexpr int kWidth = 40;
  int filled = static_cast<int>(kWidth * done / total_);
  char bar[kWidth + 1];
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = '\0';
  double elapsed = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\r[%s] %3d%% %zu/%zu requests, simulated %.1f s, %.1f s wall", bar,
               static_cast<int>(100 * done / total_), done, total_, s_from_us(now_us), elapsed);
  std::fflush(stderr);
}

void Progress::finish() {
  if (drawn_) std::fputc('\n', stderr);
  drawn_ = false;
}

}  // namespace twinfer::sim
