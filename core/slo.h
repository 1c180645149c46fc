// Service-level objectives of a workload, read from the config's "workload.slo" and judged by the
// recorder, the cost-aware router and the predictive autoscaler.
#pragma once

namespace twinfer {

// 0 means "no bound". A completed request meets its SLO when it meets every bound and its own
// deadline, if any.
struct SloSpec {
  double ttft_ms = 0;
  double tpot_ms = 0;
  double latency_ms = 0;
};

}  // namespace twinfer
