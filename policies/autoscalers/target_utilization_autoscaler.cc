#include "policies/autoscalers/target_utilization_autoscaler.h"

#include <cmath>

namespace twinfer {

TargetUtilizationAutoscaler::Options TargetUtilizationAutoscaler::read_options(JsonParams& p) {
  Options o;
  std::string metric = "busy";
  p.get("target", o.target);
  p.get("metric", metric);
  read_scaling_behavior(p, o.behavior);
  p.require(o.target > 0 && o.target <= 1, "target", "must be in (0, 1], got " + decimal(o.target, 3));
  p.require(metric == "busy" || metric == "kv", "metric", "must be \"busy\" or \"kv\", got \"" + metric + "\"");
  o.metric = metric == "kv" ? Metric::kKv : Metric::kBusy;
  return o;
}

TargetUtilizationAutoscaler::TargetUtilizationAutoscaler(const Options& options)
    : options_(options),
      windows_(us_from_s(options.behavior.scale_up_stabilization_s),
               us_from_s(options.behavior.scale_down_stabilization_s)) {}

ScaleDecision TargetUtilizationAutoscaler::decide(const PoolSample& s) {
  const int current = s.current();
  const double tolerance = options_.behavior.tolerance;
  const double value = options_.metric == Metric::kKv ? s.kv_used_fraction : s.utilization;
  const std::string measured = std::string(options_.metric == Metric::kKv ? "kv use " : "utilization ") +
                               decimal(value) + " vs target " + decimal(options_.target);
  int recommended = current;
  std::string why;
  const double ratio = value / options_.target;
  if (s.ready == 0) {
    why = "no ready replica to measure";
  } else if (s.starting > 0 && ratio > 1 &&
             s.ready * ratio / current <= 1 + tolerance) {
    // The HPA's rule for unready pods: a scale-up must still be needed once they take load.
    why = measured + ", enough once " + std::to_string(s.starting) + " starting replica(s) are ready";
  } else if (std::abs(ratio - 1) <= tolerance) {
    why = measured + " within tolerance " + decimal(tolerance);
  } else {
    recommended = ceil_replicas(s.ready * ratio);
    why = measured + " on " + std::to_string(s.ready) + " ready: recommend " + std::to_string(recommended);
  }
  return finish_decision(windows_, s, recommended, options_.behavior.max_scale_up_step, why);
}

}  // namespace twinfer
