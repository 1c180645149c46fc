// The built-in traffic splits and the process-wide traffic split registry.
#include <memory>

#include "policies/registry.h"
#include "policies/splits/weighted_split.h"

namespace twinfer {
namespace {

std::unique_ptr<TrafficSplit> make_weighted(JsonParams& p, const PolicyContext& ctx) {
  auto opts = WeightedSplit::read_options(p, ctx.seed);
  p.done();
  return std::make_unique<WeightedSplit>(std::move(opts));
}

void register_builtin_splits(PolicyRegistry<TrafficSplit>& r) { r.add("weighted", make_weighted); }

}  // namespace

PolicyRegistry<TrafficSplit>& traffic_split_registry() {
  static PolicyRegistry<TrafficSplit>& registry =
      builtin_registry<TrafficSplit>("traffic split", register_builtin_splits);
  return registry;
}

}  // namespace twinfer
