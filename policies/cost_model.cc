#include "policies/cost_model.h"

namespace twinfer {

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
