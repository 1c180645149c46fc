// Simulated and real time, as integer microseconds.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace twinfer {

// A point in time or a duration, in microseconds. Every time in the policy layer uses this type;
// names carry the unit (`arrival_us`, `delay_us`).
using TimeUs = std::int64_t;

// "Never" / "no deadline". Larger than every real time, so min() and comparisons just work.
constexpr TimeUs kNever = std::numeric_limits<TimeUs>::max();

constexpr TimeUs kUsPerMs = 1000;
constexpr TimeUs kUsPerS = 1000 * 1000;

// Rounds a duration in seconds to the nearest microsecond.
inline TimeUs us_from_s(double seconds) { return static_cast<TimeUs>(std::llround(seconds * 1e6)); }
inline TimeUs us_from_ms(double ms) { return static_cast<TimeUs>(std::llround(ms * 1e3)); }
inline double s_from_us(TimeUs us) { return static_cast<double>(us) * 1e-6; }
inline double ms_from_us(TimeUs us) { return static_cast<double>(us) * 1e-3; }

}  // namespace twinfer
