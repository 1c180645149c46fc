#include "policies/cost/roofline_cost_model.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/model_dimensions.h"

namespace twinfer {
namespace {

// Per-instance constants of the roofline, in SI units.
struct Rates {
  double flops_per_s = 0;         // all tp GPUs together
  double bytes_per_s = 0;
  double flops_per_token = 0;     // 2 * params
  double flops_per_attn_pair = 0; // 4 * layers * hidden
  double weights_bytes = 0;
  double kv_bytes_per_token = 0;
  double allreduce_s_per_token = 0;  // bandwidth term of all the all-reduces of one iteration
  double allreduce_fixed_s = 0;      // latency term of all the all-reduces of one iteration
  double overhead_s = 0;
};

Rates make_rates(const InstanceSpec& inst, const RooflineCostModel::Options& opts) {
  const DeviceProfile& d = inst.device;
  const ModelSpec& m = inst.model;
  const double tp = inst.tp();
  const double ce = opts.compute_efficiency > 0 ? opts.compute_efficiency : d.compute_efficiency;
  const double be = opts.bandwidth_efficiency > 0 ? opts.bandwidth_efficiency : d.bandwidth_efficiency;
  Rates r;
  r.flops_per_s = tp * d.peak_tflops * 1e12 * ce;
  r.bytes_per_s = tp * d.mem_bandwidth_gbps * 1e9 * be;
  r.flops_per_token = 2.0 * m.params;
  r.flops_per_attn_pair = 4.0 * m.layers * m.hidden;
  r.weights_bytes = model_weights_bytes(m);
  r.kv_bytes_per_token = model_kv_bytes_per_token(m);
  if (inst.tp() > 1 && m.layers > 0) {
    if (!(inst.gpu_link.bandwidth_gbps > 0)) {
      throw Error("roofline cost model: instance '" + inst.name + "' has tp " + std::to_string(inst.tp()) +
                  " but no gpu_link bandwidth");
    }
    const double allreduces = 2.0 * m.layers;
    const double ring_factor = 2.0 * (tp - 1) / tp;
    r.allreduce_s_per_token =
        allreduces * ring_factor * m.hidden * m.bytes_per_param / (inst.gpu_link.bandwidth_gbps * 1e9);
    r.allreduce_fixed_s = allreduces * 2.0 * (tp - 1) * inst.gpu_link.latency_us * 1e-6;
  }
  r.overhead_s = opts.iteration_overhead_us * 1e-6;
  return r;
}

// The work of one iteration in real-valued token counts (a shrinking batch averages to fractions).
struct Work {
  double tokens = 0;      // prefill tokens + decode sequences
  double attn_pairs = 0;  // prefill query-key pairs + decode context tokens
  double kv_read_tokens = 0;
};

double compute_s(const Rates& r, const Work& w) {
  return (r.flops_per_token * w.tokens + r.flops_per_attn_pair * w.attn_pairs) / r.flops_per_s;
}

double memory_s(const Rates& r, const Work& w) {
  return (r.weights_bytes + r.kv_bytes_per_token * (w.kv_read_tokens + w.tokens)) / r.bytes_per_s;
}

// All-reduces and launch overhead: the part of an iteration that overlaps neither roofline term.
double fixed_s(const Rates& r, double tokens) {
  return r.allreduce_s_per_token * tokens + r.allreduce_fixed_s + r.overhead_s;
}

double iteration_s(const Rates& r, const Work& w) {
  return std::max(compute_s(r, w), memory_s(r, w)) + fixed_s(r, w.tokens);
}

// Sum over integer j in [first, last] of a + b * j (0 when the range is empty).
double linear_sum(double a, double b, double first, double last) {
  if (last < first) return 0;
  const double n = last - first + 1;
  return n * a + b * (first + last) * n / 2;
}

// Sum over j = 1..steps of max(ca + cb * j, ma + mb * j): the two lines cross at most once.
double sum_of_max(double ca, double cb, double ma, double mb, double steps) {
  const double slope = cb - mb;
  const double gap = ca - ma;  // compute >= memory where gap + slope * j >= 0
  if (slope == 0) return gap >= 0 ? linear_sum(ca, cb, 1, steps) : linear_sum(ma, mb, 1, steps);
  const double cross = -gap / slope;
  if (slope > 0) {  // memory-bound first, compute-bound from ceil(cross) on
    const double first_compute = std::clamp(std::ceil(cross), 1.0, steps + 1);
    return linear_sum(ma, mb, 1, first_compute - 1) + linear_sum(ca, cb, first_compute, steps);
  }
  const double last_compute = std::clamp(std::floor(cross), 0.0, steps);
  return linear_sum(ca, cb, 1, last_compute) + linear_sum(ma, mb, last_compute + 1, steps);
}

// Decode steps 1..steps of `seqs` sequences whose contexts sum to context0 + seqs * j in step j.
double decode_steps_s(const Rates& r, double seqs, double context0, double steps) {
  if (steps <= 0 || seqs <= 0) return 0;
  // Each step adds `seqs` tokens to the attended and read context: both terms grow linearly in j.
  const Work at_zero{seqs, context0, context0};
  const double ca = compute_s(r, at_zero);
  const double cb = r.flops_per_attn_pair * seqs / r.flops_per_s;
  const double ma = memory_s(r, at_zero);
  const double mb = r.kv_bytes_per_token * seqs / r.bytes_per_s;
  return sum_of_max(ca, cb, ma, mb, steps) + steps * fixed_s(r, seqs);
}

TimeUs round_us(double seconds) {
  return std::max<TimeUs>(1, static_cast<TimeUs>(std::llround(seconds * 1e6)));
}

}  // namespace

double RooflineCostModel::iteration_seconds(const InstanceSpec& instance, const IterationShape& shape) const {
  const Rates r = make_rates(instance, opts_);
  Work w;
  w.tokens = static_cast<double>(shape.prefill_tokens + shape.decode_seqs);
  w.attn_pairs = static_cast<double>(shape.prefill_attn_pairs + shape.decode_context_tokens);
  w.kv_read_tokens = static_cast<double>(shape.decode_context_tokens + shape.prefill_prior_tokens);
  return iteration_s(r, w);
}

double RooflineCostModel::batch_seconds(const InstanceSpec& instance, const RequestBatchShape& shape) const {
  const Rates r = make_rates(instance, opts_);
  const double b = static_cast<double>(shape.batch_size);
  const double input = static_cast<double>(shape.input_tokens);
  const Work prefill{input, input * input / b, 0};
  const double steps = static_cast<double>(std::max<std::int64_t>(0, shape.max_output_tokens - 1));
  double seqs = b;
  if (!opts_.static_padding && steps > 0) {
    // Each sequence decodes max(1, its output) - 1 times.
    const double decode_tokens = std::max(0.0, static_cast<double>(shape.output_tokens) - b);
    seqs = std::min(b, decode_tokens / steps);
  }
  const double context0 = seqs * input / b;
  return iteration_s(r, prefill) + decode_steps_s(r, seqs, context0, steps) + opts_.batch_overhead_us * 1e-6;
}

TimeUs RooflineCostModel::iteration_time_us(const InstanceSpec& instance, const IterationShape& shape) const {
  return round_us(iteration_seconds(instance, shape));
}

TimeUs RooflineCostModel::batch_time_us(const InstanceSpec& instance, const RequestBatchShape& shape) const {
  return round_us(batch_seconds(instance, shape));
}

}  // namespace twinfer
