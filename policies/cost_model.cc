#include "policies/cost_model.h"

namespace twinfer {

void CostModel::decode_times_us(const InstanceSpec& instance, std::int64_t seqs, std::int64_t context_tokens,
                                std::int64_t steps, std::vector<TimeUs>& out) const {
  IterationShape shape;
  shape.decode_seqs = seqs;
  shape.decode_context_tokens = context_tokens;
  for (std::int64_t j = 0; j < steps; ++j) {
    shape.decode_context_tokens += seqs;
    out.push_back(iteration_time_us(instance, shape));
  }
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
