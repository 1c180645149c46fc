#include "policies/autoscalers/stabilization.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>

namespace twinfer {

void read_scaling_behavior(JsonParams& p, ScalingBehavior& b) {
  p.get("tolerance", b.tolerance);
  p.get("scale_up_stabilization_s", b.scale_up_stabilization_s);
  p.get("scale_down_stabilization_s", b.scale_down_stabilization_s);
  p.get("max_scale_up_step", b.max_scale_up_step);
  p.require(b.tolerance >= 0, "tolerance", "must be >= 0, got " + decimal(b.tolerance, 3));
  p.require(b.scale_up_stabilization_s >= 0, "scale_up_stabilization_s",
            "must be >= 0 seconds, got " + decimal(b.scale_up_stabilization_s, 3));
  p.require(b.scale_down_stabilization_s >= 0, "scale_down_stabilization_s",
            "must be >= 0 seconds, got " + decimal(b.scale_down_stabilization_s, 3));
  p.require(b.max_scale_up_step >= 0, "max_scale_up_step",
            "must be >= 0 (0: unlimited), got " + std::to_string(b.max_scale_up_step));
}

StabilizationWindows::StabilizationWindows(TimeUs scale_up_window_us, TimeUs scale_down_window_us)
    : up_window_us_(scale_up_window_us), down_window_us_(scale_down_window_us) {
  assert(up_window_us_ >= 0 && down_window_us_ >= 0);
}

StabilizationWindows::Result StabilizationWindows::apply(TimeUs now_us, int current, int recommended) {
  assert(history_.empty() || history_.back().first <= now_us);
  // As the HPA seeds a new autoscaler's history with the current size: the first decision cannot
  // scale down at once, nor up past a scale-up window.
  if (history_.empty()) history_.emplace_back(now_us, current);
  history_.emplace_back(now_us, recommended);
  const TimeUs longest_us = std::max(up_window_us_, down_window_us_);
  // The newest entry always stays: it is inside every window, even one of length 0.
  while (history_.size() > 1 && history_.front().first <= now_us - longest_us) history_.pop_front();

  Result r;
  r.up_floor = recommended;
  r.down_ceiling = recommended;
  for (const auto& [at_us, replicas] : history_) {
    if (at_us > now_us - up_window_us_) r.up_floor = std::min(r.up_floor, replicas);
    if (at_us > now_us - down_window_us_) r.down_ceiling = std::max(r.down_ceiling, replicas);
  }
  // As the HPA does: start from the current size, raise it to the floor, lower it to the ceiling.
  r.replicas = std::min(std::max(current, r.up_floor), r.down_ceiling);
  return r;
}

int ceil_replicas(double x) {
  constexpr int kMaxReplicas = 1000000;
  if (!(x > 0)) return 0;
  if (x >= kMaxReplicas) return kMaxReplicas;
  return static_cast<int>(std::ceil(x - 1e-9));
}

std::string decimal(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

ScaleDecision finish_decision(StabilizationWindows& windows, const PoolSample& s, int recommended,
                              int max_scale_up_step, const std::string& why) {
  assert(s.min_replicas <= s.max_replicas);
  const int current = s.current();
  std::string notes;
  const auto stable = windows.apply(s.now_us, current, recommended);
  int desired = stable.replicas;
  if (desired != recommended) {
    notes += desired > recommended ? " (scale-down window holds " : " (scale-up window holds ";
    notes += std::to_string(desired) + ")";
  }
  if (max_scale_up_step > 0 && desired > current + max_scale_up_step) {
    desired = current + max_scale_up_step;
    notes += " (step limit +" + std::to_string(max_scale_up_step) + ")";
  }
  const int clamped = std::min(std::max(desired, s.min_replicas), s.max_replicas);
  if (clamped != desired) {
    notes += " (clamped to [" + std::to_string(s.min_replicas) + ", " + std::to_string(s.max_replicas) + "])";
  }
  ScaleDecision d;
  d.desired = clamped;
  d.reason = why + ": " + std::to_string(current) + " -> " + std::to_string(clamped) + notes;
  return d;
}

}  // namespace twinfer
