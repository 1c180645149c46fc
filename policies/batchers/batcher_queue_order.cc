#include "policies/batchers/batcher_queue_order.h"

#include <algorithm>

namespace twinfer {

void read_queue_order(JsonParams& params, const std::string& key, QueueOrder& order) {
  std::string name = order == QueueOrder::kSjf ? "sjf" : order == QueueOrder::kPriority ? "priority" : "fcfs";
  params.get(key, name);
  if (name == "fcfs") {
    order = QueueOrder::kFcfs;
  } else if (name == "sjf") {
    order = QueueOrder::kSjf;
  } else if (name == "priority") {
    order = QueueOrder::kPriority;
  } else {
    params.require(false, key, "unknown order '" + name + "'; valid: fcfs, sjf, priority");
  }
}

QueueRanker::QueueRanker(QueueOrder order, int priority_levels, const CostModel* cost,
                         const InstanceSpec* instance)
    : order_(order), priority_levels_(priority_levels), cost_(cost), instance_(instance) {}

int QueueRanker::level(const Request& request) const {
  if (priority_levels_ <= 0) return request.priority;
  return std::clamp(request.priority, 0, priority_levels_ - 1);
}

std::int64_t QueueRanker::rank(const Request& request) const {
  switch (order_) {
    case QueueOrder::kFcfs:
      return 0;
    case QueueOrder::kSjf:
      if (cost_ != nullptr && instance_ != nullptr) {
        return request_work_us(*cost_, *instance_, request.input_tokens, request.output_tokens);
      }
      return std::int64_t{request.input_tokens} + request.output_tokens;
    case QueueOrder::kPriority:
      return -std::int64_t{level(request)};
  }
  return 0;
}

}  // namespace twinfer
