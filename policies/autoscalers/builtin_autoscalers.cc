// The built-in autoscalers and the process-wide autoscaler registry.
#include <memory>

#include "policies/autoscalers/predictive_autoscaler.h"
#include "policies/autoscalers/queue_depth_autoscaler.h"
#include "policies/autoscalers/target_utilization_autoscaler.h"
#include "policies/registry.h"
#include "core/slo.h"

namespace twinfer {
namespace {

std::unique_ptr<Autoscaler> make_target_utilization(JsonParams& p, const PolicyContext&) {
  auto opts = TargetUtilizationAutoscaler::read_options(p);
  p.done();
  return std::make_unique<TargetUtilizationAutoscaler>(opts);
}

std::unique_ptr<Autoscaler> make_queue_depth(JsonParams& p, const PolicyContext&) {
  auto opts = QueueDepthAutoscaler::read_options(p);
  p.done();
  return std::make_unique<QueueDepthAutoscaler>(opts);
}

std::unique_ptr<Autoscaler> make_predictive(JsonParams& p, const PolicyContext& ctx) {
  auto opts = PredictiveAutoscaler::read_options(p, ctx.slo != nullptr ? *ctx.slo : SloSpec{});
  p.done();
  if (ctx.cost == nullptr) {
    throw Error(p.where() + ": predictive needs a cost model to size replicas; none was given");
  }
  return std::make_unique<PredictiveAutoscaler>(opts, *ctx.cost);
}

void register_builtin_autoscalers(PolicyRegistry<Autoscaler>& r) {
  r.add("target_utilization", make_target_utilization);
  r.add("queue_depth", make_queue_depth);
  r.add("predictive", make_predictive);
}

}  // namespace

PolicyRegistry<Autoscaler>& autoscaler_registry() {
  static PolicyRegistry<Autoscaler>& registry =
      builtin_registry<Autoscaler>("autoscaler", register_builtin_autoscalers);
  return registry;
}

}  // namespace twinfer
