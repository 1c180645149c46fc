// The policies of a run, built from its config the same way by the simulator and by every mode of
// the runtime, so that one config means the same decisions everywhere.
#pragma once

#include <cstdint>
#include <memory>

#include "policies/registry.h"
#include "serving/run_config.h"

namespace twinfer {

// The front end's policies: the cost model, admission and router of `config`, and the load
// shedding of config.protection.shed (checked before admission; see admit_request()).
struct RunPolicies {
  std::unique_ptr<CostModel> cost;
  std::unique_ptr<Admission> admission;
  std::unique_ptr<Router> router;
  std::unique_ptr<Admission> shed;
};

// Throws twinfer::Error naming the config key (policies.router, ..., protection.shed) on a bad name
// or parameter.
// Randomized policies are seeded with `seed`. A router that reads KV events needs a worker with
// prefix caching (else twinfer::Error).
RunPolicies make_run_policies(const RunConfig& config, std::uint64_t seed);

// The batcher of one worker: the config's batcher for `instance`, seeded seed + 1 + its index.
std::unique_ptr<Batcher> make_worker_batcher(const RunConfig& config, const InstanceSpec& instance,
                                             const CostModel& cost, std::uint64_t seed);

}  // namespace twinfer
