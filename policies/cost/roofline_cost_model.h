// An analytic cost model: the roofline of an instance's GPUs plus tensor-parallel communication.
#pragma once

#include <string>

#include "policies/cost_model.h"

namespace twinfer {

// Parameters of the roofline cost model (config: policies.cost_model, name "roofline").
struct RooflineOptions {
  // Kernel launches and scheduling per iteration (a CUDA-graph-less decode step in vLLM spends
  // about 0.1-0.3 ms outside the GPU kernels).
  double iteration_overhead_us = 200;
  // Added once per request batch (input transfer, dispatch); 0 since each of the batch's
  // iterations already pays iteration_overhead_us.
  double batch_overhead_us = 0;
  double compute_efficiency = 0;    // in [0, 1]; 0: the device profile's
  double bandwidth_efficiency = 0;  // in [0, 1]; 0: the device profile's
  bool static_padding = true;
};

// The step-time model of step_time.h with coefficients derived from the device profile (see
// roofline_coefficients): time of one iteration on an instance of tp GPUs (each GPU does 1/tp of
// the work):
//
//   flops   = 2 * params * tokens + 4 * layers * hidden * (prefill_attn_pairs + decode_context_tokens)
//   bytes   = weights_bytes                                           (weights, read once)
//           + kv_bytes_per_token * (decode_context_tokens + prefill_prior_tokens)    (KV read)
//           + kv_bytes_per_token * tokens                                            (KV written)
//   time    = max(flops / (tp * peak * compute_eff), bytes / (tp * bandwidth * bandwidth_eff))
//           + allreduce + iteration_overhead
//
// with tokens = prefill_tokens + decode_seqs. For tp > 1, each layer does 2 ring all-reduces of
// tokens * hidden * bytes_per_param bytes over the host's gpu_link, each costing
// 2 (tp-1)/tp * bytes / link bandwidth + 2 (tp-1) * link latency.
//
// A request batch of b sequences with output length T (max_output_tokens) runs one prefill
// iteration over all its input tokens (attention pairs input_tokens^2 / b: equal lengths), then
// T - 1 decode iterations: as in WorkerState, the prefill step produces the first output token and
// each decode step one more. In decode step j (1-based) a sequence attends over its input plus j
// tokens. The sum over the decode steps is computed in closed form (both roofline terms are linear in
// j, so the sum of their maximum splits at one crossover step), in O(1):
//   - static_padding (default): all b sequences decode for all T - 1 steps (the batch is padded).
//   - otherwise: the batch shrinks as outputs finish; it is modelled as a constant batch of the
//     average size n = (output_tokens - b) / (T - 1) sequences over the T - 1 steps, each with the
//     average input length. Exact when all outputs are equal.
// Then batch_overhead_us is added once.
//
// Times round to the nearest microsecond, at least 1. Thread safety: immutable after construction.
class RooflineCostModel : public CostModel {
 public:
  using Options = RooflineOptions;

  explicit RooflineCostModel(Options options = Options()) : opts_(options) {}

  TimeUs iteration_time_us(const InstanceSpec& instance, const IterationShape& shape) const override;
  void decode_times_us(const InstanceSpec& instance, std::int64_t seqs, std::int64_t context_tokens, std::int64_t steps,
                       std::vector<TimeUs>& out) const override;
  TimeUs batch_time_us(const InstanceSpec& instance, const RequestBatchShape& shape) const override;
  std::string name() const override { return "roofline"; }

  // The same times in seconds, unrounded.
  double iteration_seconds(const InstanceSpec& instance, const IterationShape& shape) const;
  double batch_seconds(const InstanceSpec& instance, const RequestBatchShape& shape) const;

  const Options& options() const { return opts_; }

 private:
  Options opts_;
};

}  // namespace twinfer
