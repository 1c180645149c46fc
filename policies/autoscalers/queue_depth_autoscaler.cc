#include "policies/autoscalers/queue_depth_autoscaler.h"

#include <algorithm>
#include <cmath>

namespace twinfer {

QueueDepthAutoscaler::Options QueueDepthAutoscaler::read_options(JsonParams& p) {
  Options o;
  std::string metric = "waiting";
  p.get("target_per_replica", o.target_per_replica);
  p.get("metric", metric);
  p.get("activation", o.activation);
  read_scaling_behavior(p, o.behavior);
  p.require(o.target_per_replica > 0, "target_per_replica",
            "must be > 0 requests, got " + decimal(o.target_per_replica, 3));
  p.require(metric == "waiting" || metric == "outstanding", "metric",
            "must be \"waiting\" or \"outstanding\", got \"" + metric + "\"");
  p.require(o.activation >= 0, "activation", "must be >= 0 requests, got " + decimal(o.activation, 3));
  o.metric = metric == "outstanding" ? Metric::kOutstanding : Metric::kWaiting;
  return o;
}

QueueDepthAutoscaler::QueueDepthAutoscaler(const Options& options)
    : options_(options),
      windows_(us_from_s(options.behavior.scale_up_stabilization_s),
               us_from_s(options.behavior.scale_down_stabilization_s)) {}

ScaleDecision QueueDepthAutoscaler::decide(const PoolSample& s) {
  const int current = s.current();
  const bool outstanding = options_.metric == Metric::kOutstanding;
  const double metric = static_cast<double>(s.waiting) + (outstanding ? s.running : 0);
  const std::string measured = std::string(outstanding ? "outstanding " : "waiting ") +
                               std::to_string(static_cast<long long>(metric));
  const double target = options_.target_per_replica;
  int recommended = current;
  std::string why;
  if (metric <= options_.activation) {
    recommended = s.min_replicas;
    why = measured + " <= activation " + decimal(options_.activation) + ": inactive";
  } else if (current > 0 && std::abs(metric / (target * current) - 1) <= options_.behavior.tolerance) {
    why = measured + " per replica within tolerance " + decimal(options_.behavior.tolerance) + " of " +
          decimal(target);
  } else {
    // Active means at least one replica, even when the metric is below one replica's target.
    recommended = std::max(1, ceil_replicas(metric / target));
    why = measured + " / " + decimal(target) + " per replica: recommend " + std::to_string(recommended);
  }
  return finish_decision(windows_, s, recommended, options_.behavior.max_scale_up_step, why);
}

}  // namespace twinfer
