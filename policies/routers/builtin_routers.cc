// The built-in routers and the process-wide router registry.
#include <memory>

#include "policies/registry.h"
#include "policies/routers/consistent_hash_router.h"
#include "policies/routers/cost_aware_router.h"
#include "policies/routers/least_outstanding_router.h"
#include "policies/routers/least_work_router.h"
#include "policies/routers/multi_resource_router.h"
#include "policies/routers/power_of_two_router.h"
#include "policies/routers/queue_feedback_router.h"
#include "policies/routers/random_router.h"
#include "policies/routers/round_robin_router.h"
#include "policies/routers/scored_router.h"

namespace twinfer {
namespace {

using Factory = PolicyRegistry<Router>::Factory;

// For routers without parameters.
template <class R>
Factory plain() {
  return [](JsonParams& p, const PolicyContext&) -> std::unique_ptr<Router> {
    p.done();
    return std::make_unique<R>();
  };
}

std::unique_ptr<Router> make_random(JsonParams& p, const PolicyContext& ctx) {
  auto opts = RandomRouter::read_options(p, ctx.seed);
  p.done();
  return std::make_unique<RandomRouter>(opts);
}

std::unique_ptr<Router> make_least_work(JsonParams& p, const PolicyContext& ctx) {
  p.done();
  if (ctx.cost == nullptr) throw Error(p.where() + ": least_work needs a cost model to predict work; none was given");
  return std::make_unique<LeastWorkRouter>(*ctx.cost);
}

std::unique_ptr<Router> make_power_of_two(JsonParams& p, const PolicyContext& ctx) {
  auto opts = PowerOfTwoRouter::read_options(p, ctx.seed);
  p.done();
  return std::make_unique<PowerOfTwoRouter>(opts);
}

std::unique_ptr<Router> make_queue_feedback(JsonParams& p, const PolicyContext& ctx) {
  auto opts = QueueFeedbackRouter::read_options(p, ctx.seed);
  p.done();
  return std::make_unique<QueueFeedbackRouter>(opts);
}

std::unique_ptr<Router> make_multi_resource(JsonParams& p, const PolicyContext&) {
  auto opts = MultiResourceRouter::read_options(p);
  p.done();
  return std::make_unique<MultiResourceRouter>(opts);
}

std::unique_ptr<Router> make_consistent_hash(JsonParams& p, const PolicyContext&) {
  auto opts = ConsistentHashRouter::read_options(p);
  p.done();
  return std::make_unique<ConsistentHashRouter>(opts);
}

std::unique_ptr<Router> make_least_outstanding(JsonParams& p, const PolicyContext&) {
  auto opts = LeastOutstandingRouter::read_options(p);
  p.done();
  return std::make_unique<LeastOutstandingRouter>(opts);
}

std::unique_ptr<Router> make_cost_aware(JsonParams& p, const PolicyContext& ctx) {
  auto opts = CostAwareRouter::read_options(p, ctx.slo);
  p.done();
  if (ctx.cost == nullptr) throw Error(p.where() + ": cost_aware needs a cost model to predict work; none was given");
  return std::make_unique<CostAwareRouter>(*ctx.cost, opts);
}

std::unique_ptr<Router> make_scored(JsonParams& p, const PolicyContext& ctx) {
  auto opts = ScoredRouter::read_options(p, ctx);
  p.done();
  return std::make_unique<ScoredRouter>(std::move(opts));
}

std::unique_ptr<Router> make_cache_aware(JsonParams& p, const PolicyContext&) {
  auto opts = CacheAwareRouter::read_options(p);
  p.done();
  return std::make_unique<CacheAwareRouter>(opts);
}

std::unique_ptr<Router> make_kv_overlap(JsonParams& p, const PolicyContext& ctx) {
  auto opts = KvOverlapRouter::read_options(p, ctx.seed);
  p.done();
  return std::make_unique<KvOverlapRouter>(opts);
}

void register_builtin_routers(PolicyRegistry<Router>& r) {
  r.add("round_robin", plain<RoundRobinRouter>());
  r.add("random", make_random);
  r.add("least_outstanding", make_least_outstanding);
  r.add("least_work", make_least_work);
  r.add("power_of_two", make_power_of_two);
  r.add("queue_feedback", make_queue_feedback);
  r.add("multi_resource", make_multi_resource);
  r.add("consistent_hash", make_consistent_hash);
  r.add("cost_aware", make_cost_aware);
  r.add("scored", make_scored);
  r.add("cache_aware", make_cache_aware);
  r.add("kv_overlap", make_kv_overlap);
}

}  // namespace

PolicyRegistry<Router>& router_registry() {
  static PolicyRegistry<Router>& registry = builtin_registry<Router>("router", register_builtin_routers);
  return registry;
}

PolicyRegistry<RouteScorer>& route_scorer_registry() {
  static PolicyRegistry<RouteScorer>& registry =
      builtin_registry<RouteScorer>("scorer", [](PolicyRegistry<RouteScorer>&) {});
  return registry;
}

}  // namespace twinfer
