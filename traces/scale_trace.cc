#include <cmath>
#include <string>

#include "core/error.h"
#include "core/params.h"
#include "traces/sampling.h"
#include "traces/trace.h"

namespace twinfer {

Trace scale_trace(const Trace& trace, double rate_scale) {
  if (!(rate_scale > 0) || !std::isfinite(rate_scale)) {
    throw Error("--rate-scale must be a finite number > 0, got " + format_number(rate_scale));
  }
  // No arrival past what a run's clock holds: 2^62 microseconds (146,000 years) at the most.
  constexpr double kLatestUs = 4.6e18;
  if (!trace.requests.empty() && double(trace.requests.back().arrival_us) / rate_scale > kLatestUs) {
    throw Error("--rate-scale " + format_number(rate_scale) + " stretches the trace's last arrival past " +
                "the run clock's range; use a larger scale");
  }
  Trace out = trace;
  for (auto& r : out.requests) {
    TimeUs arrival = static_cast<TimeUs>(std::llround(static_cast<double>(r.arrival_us) / rate_scale));
    if (r.deadline_us != kNever) r.deadline_us = arrival + (r.deadline_us - r.arrival_us);
    r.arrival_us = arrival;
  }
  return out;
}

Trace poisson_arrivals(const Trace& trace, std::uint64_t seed) {
  Trace out = trace;
  const auto& rs = trace.requests;
  if (rs.size() < 2 || rs.back().arrival_us <= rs.front().arrival_us) return out;
  const double mean_gap_us = double(rs.back().arrival_us - rs.front().arrival_us) / double(rs.size() - 1);
  std::mt19937_64 rng(derive_seed(seed, 0x706f6973u));
  double t = double(rs.front().arrival_us);
  for (auto& r : out.requests) {
    TimeUs arrival = static_cast<TimeUs>(std::llround(t));
    if (r.deadline_us != kNever) r.deadline_us = arrival + (r.deadline_us - r.arrival_us);
    r.arrival_us = arrival;
    t += exponential(rng, mean_gap_us);
  }
  out.source = trace.source + " (Poisson arrivals)";
  return out;
}

}  // namespace twinfer
