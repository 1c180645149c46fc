// queue_depth: KEDA-style scaling on the pool's queue (a KEDA scaler feeding the HPA an
// AverageValue target).
#pragma once

#include <string>

#include "policies/autoscaler.h"
#include "policies/autoscalers/stabilization.h"
#include "core/params.h"

namespace twinfer {

// metric = waiting ("waiting") or waiting + running ("outstanding"), summed over the pool.
// metric <= activation: the scaler is inactive and recommends min_replicas (0 allows scale to zero).
// Otherwise recommended = max(1, ceil(metric / target_per_replica)), except that with current() > 0
// and |metric / (target_per_replica * current()) - 1| <= tolerance it is current(). The
// recommendation then goes through the stabilization windows (the scale-down window plays KEDA's
// cooldown), the scale-up step limit and [min_replicas, max_replicas].
class QueueDepthAutoscaler : public Autoscaler {
 public:
  enum class Metric { kWaiting, kOutstanding };
  struct Options {
    double target_per_replica = 4;  // requests per replica wanted, > 0
    Metric metric = Metric::kWaiting;  // "waiting" | "outstanding"
    double activation = 0;          // requests; at or below it the scaler is inactive, >= 0
    ScalingBehavior behavior;       // tolerance 0.1, windows up 0 s / down 300 s, no step limit
  };
  // Reads "target_per_replica", "metric", "activation" and the ScalingBehavior keys; checks ranges.
  // Does not call p.done().
  static Options read_options(JsonParams& p);

  explicit QueueDepthAutoscaler(const Options& options);
  ScaleDecision decide(const PoolSample& sample) override;
  std::string name() const override { return "queue_depth"; }

 private:
  Options options_;
  StabilizationWindows windows_;
};

}  // namespace twinfer
