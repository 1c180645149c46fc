// target_utilization: the Kubernetes Horizontal Pod Autoscaler's algorithm on the pool's busy
// fraction (or KV-cache use).
#pragma once

#include <string>

#include "policies/autoscaler.h"
#include "policies/autoscalers/stabilization.h"
#include "core/params.h"

namespace twinfer {

// ratio = metric / target, over the ready replicas;
// recommended = ceil(ready * ratio), or current() while |ratio - 1| <= tolerance.
// When replicas are starting and ratio > 1, they count as idle (as the HPA counts unready pods):
// no change unless ready * metric / (current() * target) > 1 + tolerance. With no ready replica
// the metric means nothing and the recommendation is current(). The recommendation then goes
// through the stabilization windows, the scale-up step limit and [min_replicas, max_replicas].
class TargetUtilizationAutoscaler : public Autoscaler {
 public:
  enum class Metric { kBusy, kKv };  // PoolSample::utilization, PoolSample::kv_used_fraction
  struct Options {
    double target = 0.7;              // wanted metric per ready replica, in (0, 1]
    Metric metric = Metric::kBusy;    // "busy" | "kv"
    ScalingBehavior behavior;         // tolerance 0.1, windows up 0 s / down 300 s, no step limit
  };
  // Reads "target", "metric" and the ScalingBehavior keys; checks ranges. Does not call p.done().
  static Options read_options(JsonParams& p);

  explicit TargetUtilizationAutoscaler(const Options& options);
  ScaleDecision decide(const PoolSample& sample) override;
  std::string name() const override { return "target_utilization"; }

 private:
  Options options_;
  StabilizationWindows windows_;
};

}  // namespace twinfer
