// The copies of KV blocks between a worker's device pool and its host-memory tier that the worker's
// KvBlocks asks an executor to carry out (the simulator times them; the runtime's backends copy).
#pragma once

#include <cstdint>
#include <vector>

namespace twinfer {

// One block's keys and values copied between the device pool and the host tier.
struct KvCopy {
  std::int32_t block = 0;       // device pool block
  std::int32_t host_block = 0;  // host tier block
};

// The copies an executor carries out before a step, in this order: stores (device to host; each
// reads its device block before any load or step writes it), then loads (host to device; each
// reads its host block after every store before it).
struct KvTransfers {
  std::vector<KvCopy> stores;
  std::vector<KvCopy> loads;
  bool empty() const { return stores.empty() && loads.empty(); }
  void clear() {
    stores.clear();
    loads.clear();
  }
};

}  // namespace twinfer
