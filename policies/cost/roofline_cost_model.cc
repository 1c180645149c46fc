#include "policies/cost/roofline_cost_model.h"

#include "policies/cost/step_time.h"

namespace twinfer {
namespace {

StepCoefficients coefficients(const InstanceSpec& instance, const RooflineOptions& opts) {
  return roofline_coefficients(instance, opts.compute_efficiency, opts.bandwidth_efficiency,
                               opts.iteration_overhead_us);
}

}  // namespace

double RooflineCostModel::iteration_seconds(const InstanceSpec& instance, const IterationShape& shape) const {
  return step_seconds(coefficients(instance, opts_), ModelTerms::of(instance.model), step_work(shape));
}

double RooflineCostModel::batch_seconds(const InstanceSpec& instance, const RequestBatchShape& shape) const {
  return request_batch_seconds(coefficients(instance, opts_), ModelTerms::of(instance.model), shape,
                               opts_.static_padding) +
         opts_.batch_overhead_us * 1e-6;
}

TimeUs RooflineCostModel::iteration_time_us(const InstanceSpec& instance, const IterationShape& shape) const {
  return round_step_us(iteration_seconds(instance, shape));
}

void RooflineCostModel::decode_times_us(const InstanceSpec& instance, std::int64_t seqs, std::int64_t context_tokens,
                                        std::int64_t steps, std::vector<TimeUs>& out) const {
  twinfer::decode_times_us(coefficients(instance, opts_), ModelTerms::of(instance.model), seqs, context_tokens, steps,
                           out);
}

TimeUs RooflineCostModel::batch_time_us(const InstanceSpec& instance, const RequestBatchShape& shape) const {
  return round_step_us(batch_seconds(instance, shape));
}

}  // namespace twinfer
