#include "policies/routers/cost_aware_router.h"

#include <cmath>
#include <utility>

#include "policies/routers/router_candidates.h"
#include "core/slo.h"

namespace twinfer {

CostAwareRouter::Options CostAwareRouter::read_options(JsonParams& p, const SloSpec* slo) {
  Options opts;
  if (slo != nullptr) opts.latency_ms = slo->latency_ms;
  p.get("latency_ms", opts.latency_ms);
  p.get("headroom", opts.headroom);
  p.get("max_outstanding", opts.max_outstanding);
  // The upper limit (about 31 years) keeps the bound in microseconds far from overflow.
  p.require(opts.latency_ms >= 0 && opts.latency_ms <= 1e12, "latency_ms", "must be in [0, 1e12] (0: no bound)");
  p.require(opts.headroom >= 0 && opts.headroom < 1, "headroom", "must be in [0, 1)");
  p.require(opts.max_outstanding >= 0, "max_outstanding", "must be >= 0 (0: no cap)");
  return opts;
}

TimeUs CostAwareRouter::predicted_latency_us(const Request& request, const WorkerView& worker) const {
  const auto round_trip_us = static_cast<TimeUs>(std::llround(2 * worker.instance->nic.latency_us));
  return round_trip_us + worker.outstanding_work_us +
         request_work_us(cost_, *worker.instance, request.input_tokens, request.output_tokens);
}

double CostAwareRouter::price_per_hour(const WorkerView& worker) {
  return worker.instance->device.price_per_hour * worker.instance->tp();
}

TimeUs CostAwareRouter::bound_us() const {
  return static_cast<TimeUs>(std::floor((1 - options_.headroom) * options_.latency_ms * 1000));
}

bool CostAwareRouter::saturated(const WorkerView& worker) const {
  return options_.max_outstanding > 0 && worker.outstanding() >= options_.max_outstanding;
}

int CostAwareRouter::cheapest_meeting_bound(const Request& request, const ClusterView& view) {
  subset_.clear();
  if (options_.latency_ms <= 0) return -1;
  const TimeUs bound = bound_us();
  for (int w : candidates_) {
    if (!saturated(view[w]) && predicted_latency_us(request, view[w]) <= bound) subset_.push_back(w);
  }
  if (subset_.empty()) return -1;
  return argmin_from(subset_, tie_start_, [&](int w) {
    return std::make_pair(price_per_hour(view[w]), predicted_latency_us(request, view[w]));
  });
}

int CostAwareRouter::fastest(const Request& request, const ClusterView& view) {
  subset_.clear();
  for (int w : candidates_) {
    if (!saturated(view[w])) subset_.push_back(w);
  }
  // Every candidate saturated: still serve, at the one predicted to finish first.
  const std::vector<int>& pool = subset_.empty() ? candidates_ : subset_;
  return argmin_from(pool, tie_start_, [&](int w) { return predicted_latency_us(request, view[w]); });
}

RouteDecision CostAwareRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  int pick = cheapest_meeting_bound(request, view);
  if (pick < 0) pick = fastest(request, view);
  tie_start_ = pick + 1;
  return RouteDecision::to(pick);
}

}  // namespace twinfer
