#include "policies/cost_model.h"

namespace twinfer {

void CostModel::decode_times_us(const InstanceSpec& instance, std::int64_t seqs, std::int64_t context_tokens,
                                std::int64_t steps, std::vector<TimeUs>& out) const {
  append_decode_times(seqs, context_tokens, steps, out,
                      [&](const IterationShape& shape) { return iteration_time_us(instance, shape); });
}

TimeUs request_work_us(const CostModel& cost, const InstanceSpec& instance, std::int64_t input_tokens,
                       std::int64_t output_tokens) {
  RequestBatchShape shape;
  shape.batch_size = 1;
  shape.input_tokens = input_tokens;
  shape.max_input_tokens = input_tokens;
  shape.output_tokens = output_tokens;
  shape.max_output_tokens = output_tokens;
  return cost.batch_time_us(instance, shape);
}

}  // namespace twinfer
