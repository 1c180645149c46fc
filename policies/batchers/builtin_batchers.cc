// The batcher registry and its built-in batchers.
#include "policies/batchers/continuous_batcher.h"
#include "policies/batchers/request_level_batcher.h"
#include "policies/registry.h"

namespace twinfer {

namespace {

void register_builtin_batchers(PolicyRegistry<Batcher>& registry) {
  registry.add("request_level", make_request_level_batcher);
  registry.add("continuous", make_continuous_batcher);
}

}  // namespace

PolicyRegistry<Batcher>& batcher_registry() {
  static PolicyRegistry<Batcher>& registry = builtin_registry<Batcher>("batcher", register_builtin_batchers);
  return registry;
}

}  // namespace twinfer
