#include "serving/run_policies.h"

#include "core/error.h"

namespace twinfer {

RunPolicies make_run_policies(const RunConfig& config, std::uint64_t seed) {
  PolicyContext ctx;
  ctx.seed = seed;
  ctx.base_dir = config.base_dir;
  ctx.slo = &config.workload.slo;
  RunPolicies p;
  p.cost = cost_model_registry().make(config.cost_model, ctx, "policies.cost_model");
  ctx.cost = p.cost.get();
  p.admission = admission_registry().make(config.admission, ctx, "policies.admission");
  p.router = router_registry().make(config.router, ctx, "policies.router");
  p.shed = admission_registry().make(config.protection.shed, ctx, "protection.shed");
  if (p.router->reads_kv_events()) {
    // KV events come from prefix caches: without one the router would score on nothing.
    bool caching = false;
    for (const InstanceSpec& inst : config.cluster.instances) {
      caching = caching || make_worker_batcher(config, inst, *p.cost, seed)->kv_capacity().prefix_caching;
    }
    if (!caching) {
      throw Error("policies.router (" + p.router->name() +
                  "): reads the workers' KV events, but no worker caches prefixes (policies.batcher.prefix_caching)");
    }
  }
  return p;
}

std::unique_ptr<Batcher> make_worker_batcher(const RunConfig& config, const InstanceSpec& instance,
                                             const CostModel& cost, std::uint64_t seed) {
  PolicyContext ctx;
  ctx.cost = &cost;
  ctx.instance = &instance;
  ctx.seed = seed + 1 + static_cast<std::uint64_t>(instance.index);
  ctx.base_dir = config.base_dir;
  return batcher_registry().make(config.batcher, ctx, "policies.batcher");
}

}  // namespace twinfer
