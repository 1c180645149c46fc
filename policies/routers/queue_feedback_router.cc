#include "policies/routers/queue_feedback_router.h"

#include <algorithm>
#include <cassert>

#include "policies/routers/router_candidates.h"

namespace twinfer {

QueueFeedbackRouter::Options QueueFeedbackRouter::read_options(JsonParams& p, std::uint64_t default_seed) {
  Options opts;
  opts.seed = default_seed;
  p.get("max_weight", opts.max_weight);
  p.get("min_weight", opts.min_weight);
  p.get("seed", opts.seed);
  p.require(opts.min_weight > 0, "min_weight", "must be > 0");
  p.require(opts.max_weight >= opts.min_weight, "max_weight", "must be >= min_weight");
  return opts;
}

QueueFeedbackRouter::QueueFeedbackRouter(const Options& options) : options_(options), rng_(options.seed) {
  assert(options_.min_weight > 0 && options_.max_weight >= options_.min_weight);
}

double QueueFeedbackRouter::weight(const WorkerView& worker) const {
  return std::max(options_.min_weight, options_.max_weight - static_cast<double>(worker.outstanding()));
}

RouteDecision QueueFeedbackRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  double total = 0;
  for (int w : candidates_) total += weight(view[w]);
  // Inverse CDF over the cumulative weights, summed in index order so results are reproducible.
  double target = uniform_unit(rng_) * total;
  double cumulative = 0;
  for (int w : candidates_) {
    cumulative += weight(view[w]);
    if (target < cumulative) return RouteDecision::to(w);
  }
  return RouteDecision::to(candidates_.back());  // rounding put target at the very top
}

}  // namespace twinfer
