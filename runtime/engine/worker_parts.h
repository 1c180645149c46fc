// Building one worker of a config, the same way in every runtime mode (embedded, worker process).
#pragma once

#include <cstdint>
#include <string>

#include "serving/run_policies.h"
#include "serving/run_config.h"
#include "runtime/engine/worker_engine.h"

namespace twinfer::runtime {

// The parts of `instance`'s worker: the config's batcher for it (seeded seed + 1 + index, as in
// the simulator), a backend on `device` running the instance's model with seeded weights and the
// batcher's KV capacity, and the shared admission, cost model and clock (borrowed).
// Throws twinfer::Error on a bad batcher, model or device, or a KV pool too large for memory.
WorkerParts make_worker_parts(const RunConfig& config, const InstanceSpec& instance, const std::string& device,
                              const Admission& admission, const CostModel& cost, const Clock& clock,
                              std::uint64_t seed);

// The backend device of `instance` for a run on `device`: "cuda" is the instance's first GPU
// ("cuda:<gpu>"); anything else ("cpu", "cuda:N") as given.
std::string backend_device(const std::string& device, const InstanceSpec& instance);

// The backend limits for a batcher: its KV capacity (4096 blocks for batchers that do not track
// KV memory). Throws twinfer::Error when that pool would need more than 8 GB for `model`.
BackendLimits backend_limits_for(const Batcher& batcher, const TransformerConfig& model);

}  // namespace twinfer::runtime
