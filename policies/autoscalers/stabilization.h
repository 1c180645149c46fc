// What the built-in autoscalers share: Kubernetes HPA-style tolerance and stabilization windows,
// a scale-up step limit, clamping to the pool's bounds, and the wording of a decision's reason.
#pragma once

#include <deque>
#include <string>
#include <utility>

#include "policies/autoscaler.h"
#include "core/params.h"
#include "core/time.h"

namespace twinfer {

// How an HPA-style policy turns a raw recommendation into a replica count.
struct ScalingBehavior {
  double tolerance = 0.1;                   // no change while |metric / target - 1| <= tolerance
  double scale_up_stabilization_s = 0;      // scale up only to the MIN recommended over this window
  double scale_down_stabilization_s = 300;  // scale down only to the MAX recommended over this window
  int max_scale_up_step = 0;                // replicas added per decision at most; 0: unlimited
};

// Reads "tolerance" (>= 0), "scale_up_stabilization_s" (>= 0), "scale_down_stabilization_s" (>= 0)
// and "max_scale_up_step" (>= 0) into `behavior`, whose values are the defaults. Does not call done().
void read_scaling_behavior(JsonParams& p, ScalingBehavior& behavior);

// The HPA's stabilization windows over the recommendations of one pool. A recommendation made at t
// counts while t > now - window (so a window of 0 holds only the current one). The result is the
// current size brought within [min over the scale-up window, max over the scale-down window]: a
// scale-down happens only when every recommendation of the scale-down window agrees, a scale-up
// only when every recommendation of the scale-up window does. The first call also records the
// current size as a recommendation made at that time (as the HPA does).
class StabilizationWindows {
 public:
  struct Result {
    int replicas = 0;      // the stabilized count
    int up_floor = 0;      // MIN recommended over the scale-up window
    int down_ceiling = 0;  // MAX recommended over the scale-down window
  };

  // REQUIRES: windows >= 0.
  StabilizationWindows(TimeUs scale_up_window_us, TimeUs scale_down_window_us);

  // Records `recommended` at `now_us` (REQUIRES: not before the previous call) and stabilizes.
  Result apply(TimeUs now_us, int current, int recommended);

 private:
  TimeUs up_window_us_;
  TimeUs down_window_us_;
  std::deque<std::pair<TimeUs, int>> history_;  // (time, recommendation), oldest first
};

// ceil(x) as a replica count, forgiving floating-point noise (7.000000000000001 is 7); 0 for x <= 0
// or NaN; at most 1,000,000.
int ceil_replicas(double x);

// `x` with `digits` decimals ("0.91").
std::string decimal(double x, int digits = 2);

// Ends a decision the same way for every policy: stabilizes `recommended` through `windows`, limits
// the scale-up to `max_scale_up_step` replicas (0: unlimited), clamps to [min_replicas, max_replicas]
// and writes the reason "<why>: <current> -> <desired>", noting what held the recommendation back.
ScaleDecision finish_decision(StabilizationWindows& windows, const PoolSample& sample, int recommended,
                              int max_scale_up_step, const std::string& why);

}  // namespace twinfer
