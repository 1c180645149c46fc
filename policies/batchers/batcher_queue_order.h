// The orders a batcher may take waiting requests in, shared by the built-in batchers.
#pragma once

#include <cstdint>
#include <string>

#include "core/cluster_config.h"
#include "policies/cost_model.h"
#include "core/params.h"
#include "core/request.h"

namespace twinfer {

enum class QueueOrder {
  kFcfs,      // arrival order
  kSjf,       // least predicted work first, then arrival
  kPriority,  // highest Request::priority first, then arrival
};

// Reads `key` ("fcfs" | "sjf" | "priority") into `order`. Throws twinfer::Error naming the key.
void read_queue_order(JsonParams& params, const std::string& key, QueueOrder& order);

// Ranks requests: a smaller rank goes first; equal ranks go in arrival order.
// Thread safety: const methods are safe to call concurrently.
class QueueRanker {
 public:
  // `priority_levels` > 0 clamps priorities into [0, priority_levels - 1]; 0 keeps them as they are.
  // SJF predicts work with `cost` on `instance` when both are given, else as input + output tokens.
  QueueRanker(QueueOrder order, int priority_levels, const CostModel* cost = nullptr,
              const InstanceSpec* instance = nullptr);
  std::int64_t rank(const Request& request) const;
  // The priority class after clamping; higher is more important.
  int level(const Request& request) const;
  QueueOrder order() const { return order_; }

 private:
  QueueOrder order_;
  int priority_levels_;
  const CostModel* cost_;
  const InstanceSpec* instance_;
};

}  // namespace twinfer
