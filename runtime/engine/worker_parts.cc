#include "runtime/engine/worker_parts.h"

#include "core/error.h"
#include "runtime/model/transformer_config.h"

namespace twinfer::runtime {

std::string backend_device(const std::string& device, const InstanceSpec& instance) {
  if (device == "cuda") return "cuda:" + std::to_string(instance.gpus.empty() ? 0 : instance.gpus[0]);
  return device;
}

BackendLimits backend_limits_for(const Batcher& batcher, const TransformerConfig& model) {
  BackendLimits limits;
  KvCapacity kv = batcher.kv_capacity();
  if (kv.blocks_total > 0) {
    limits.kv_blocks = kv.blocks_total;
    limits.block_tokens = kv.block_tokens;
    limits.host_kv_blocks = kv.host_blocks;
  } else {
    limits.kv_blocks = 4096;  // request-level batches hold their caches only while they run
  }
  const double pool_bytes = double(limits.kv_blocks) * limits.block_tokens * double(model.kv_bytes_per_token());
  if (pool_bytes > 8e9) {
    throw Error("the KV cache of " + std::to_string(limits.kv_blocks) + " blocks needs " +
                std::to_string(pool_bytes / 1e9) + " GB for this model; set policies.batcher.kv_blocks");
  }
  const double host_bytes = double(limits.host_kv_blocks) * limits.block_tokens * double(model.kv_bytes_per_token());
  if (host_bytes > 16e9) {
    throw Error("the host-memory KV tier of " + std::to_string(limits.host_kv_blocks) + " blocks needs " +
                std::to_string(host_bytes / 1e9) + " GB for this model; set policies.batcher.host_kv_blocks");
  }
  return limits;
}

WorkerParts make_worker_parts(const RunConfig& config, const InstanceSpec& instance, const std::string& device,
                              const Admission& admission, const CostModel& cost, const Clock& clock,
                              std::uint64_t seed) {
  WorkerParts parts;
  parts.index = instance.index;
  parts.instance = &instance;
  parts.batcher = make_worker_batcher(config, instance, cost, seed);
  TransformerConfig model = TransformerConfig::from_model(instance.model, seed);
  parts.backend = make_backend(device, model, backend_limits_for(*parts.batcher, model));
  parts.admission = &admission;
  parts.cost = &cost;
  parts.clock = &clock;
  parts.vocab = model.vocab;
  return parts;
}

}  // namespace twinfer::runtime
