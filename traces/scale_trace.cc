#include <cmath>
#include <string>

#include "policies/error.h"
#include "traces/trace.h"

namespace twinfer {

Trace scale_trace(const Trace& trace, double rate_scale) {
  if (!(rate_scale > 0)) throw Error("--rate-scale must be > 0, got " + std::to_string(rate_scale));
  Trace out = trace;
  for (auto& r : out.requests) {
    TimeUs arrival = static_cast<TimeUs>(std::llround(static_cast<double>(r.arrival_us) / rate_scale));
    if (r.deadline_us != kNever) r.deadline_us = arrival + (r.deadline_us - r.arrival_us);
    r.arrival_us = arrival;
  }
  return out;
}

}  // namespace twinfer
