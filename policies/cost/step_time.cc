#include "policies/cost/step_time.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/model_dimensions.h"

namespace twinfer {
namespace {

double compute_s(const StepCoefficients& c, const ModelTerms& m, const StepWork& w) {
  return c.linear_s_per_flop * m.flops_per_token * w.tokens + c.attention_s_per_flop * m.flops_per_attn_pair * w.attn_pairs;
}

double memory_s(const StepCoefficients& c, const ModelTerms& m, const StepWork& w) {
  const double kv_bytes = m.kv_bytes_per_token * (w.kv_read_tokens + w.tokens);
  double s = c.weights_s_per_byte * m.weights_bytes + c.kv_s_per_byte * kv_bytes;
  if (w.tokens > 1) s += c.gemm_weights_s_per_byte * m.weights_bytes;
  if (c.spill_s_per_byte > 0) s += c.spill_s_per_byte * std::max(0.0, m.weights_bytes + kv_bytes - c.cache_bytes);
  return s;
}

// The part of a step that overlaps neither roofline term.
double fixed_s(const StepCoefficients& c, const StepWork& w) {
  return c.step_s + c.sequence_s * w.sequences + c.comm_s_per_token * w.tokens + c.comm_s;
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
double decode_steps_s(const StepCoefficients& c, const ModelTerms& m, double seqs, double context0, double steps) {
  if (steps <= 0 || seqs <= 0) return 0;
  if (c.spill_s_per_byte > 0) {
    // The spill term bends the memory line: step by step.
    double sum = 0;
    for (double j = 1; j <= steps; ++j) {
      const double context = context0 + seqs * j;
      sum += step_seconds(c, m, StepWork{seqs, seqs, context, context});
    }
    return sum;
  }
  // Each step adds `seqs` tokens to the attended and read context: both terms grow linearly in j.
  const StepWork at_zero{seqs, seqs, context0, context0};
  const double ca = compute_s(c, m, at_zero);
  const double cb = c.attention_s_per_flop * m.flops_per_attn_pair * seqs;
  const double ma = memory_s(c, m, at_zero);
  const double mb = c.kv_s_per_byte * m.kv_bytes_per_token * seqs;
  return sum_of_max(ca, cb, ma, mb, steps) + steps * fixed_s(c, at_zero);
}

}  // namespace

ModelTerms ModelTerms::of(const ModelSpec& model) {
  ModelTerms t;
  t.flops_per_token = 2.0 * model.params;
  t.flops_per_attn_pair = 4.0 * model.layers * model.hidden;
  t.weights_bytes = model_weights_bytes(model);
  t.kv_bytes_per_token = model_kv_bytes_per_token(model);
  return t;
}

StepWork step_work(const IterationShape& shape) {
  StepWork w;
  w.tokens = static_cast<double>(shape.prefill_tokens + shape.decode_seqs);
  w.sequences = static_cast<double>(shape.prefill_seqs + shape.decode_seqs);
  w.attn_pairs = static_cast<double>(shape.prefill_attn_pairs + shape.decode_context_tokens);
  w.kv_read_tokens = static_cast<double>(shape.decode_context_tokens + shape.prefill_prior_tokens);
  return w;
}

void set_comm_terms(const InstanceSpec& inst, StepCoefficients& c) {
  const ModelSpec& m = inst.model;
  c.comm_s_per_token = 0;
  c.comm_s = 0;
  if (inst.tp() <= 1 || m.layers <= 0) return;
  if (!(inst.gpu_link.bandwidth_gbps > 0)) {
    throw Error("cost model: instance '" + inst.name + "' has tp " + std::to_string(inst.tp()) +
                " but no gpu_link bandwidth");
  }
  const double tp = inst.tp();
  const double allreduces = 2.0 * m.layers;
  const double ring_factor = 2.0 * (tp - 1) / tp;
  c.comm_s_per_token = allreduces * ring_factor * m.hidden * m.bytes_per_param / (inst.gpu_link.bandwidth_gbps * 1e9);
  c.comm_s = allreduces * 2.0 * (tp - 1) * inst.gpu_link.latency_us * 1e-6;
}

StepCoefficients roofline_coefficients(const InstanceSpec& inst, double compute_efficiency,
                                       double bandwidth_efficiency, double step_overhead_us) {
  const DeviceProfile& d = inst.device;
  const double tp = inst.tp();
  const double ce = compute_efficiency > 0 ? compute_efficiency : d.compute_efficiency;
  const double be = bandwidth_efficiency > 0 ? bandwidth_efficiency : d.bandwidth_efficiency;
  StepCoefficients c;
  c.step_s = step_overhead_us * 1e-6;
  c.linear_s_per_flop = 1.0 / (tp * d.peak_tflops * 1e12 * ce);
  c.attention_s_per_flop = c.linear_s_per_flop;
  c.weights_s_per_byte = 1.0 / (tp * d.mem_bandwidth_gbps * 1e9 * be);
  c.kv_s_per_byte = c.weights_s_per_byte;
  set_comm_terms(inst, c);
  return c;
}

double step_seconds(const StepCoefficients& c, const ModelTerms& m, const StepWork& w) {
  return std::max(compute_s(c, m, w), memory_s(c, m, w)) + fixed_s(c, w);
}

double request_batch_seconds(const StepCoefficients& c, const ModelTerms& m, const RequestBatchShape& shape,
                             bool static_padding) {
  const double b = static_cast<double>(shape.batch_size);
  const double input = static_cast<double>(shape.input_tokens);
  const StepWork prefill{input, b, input * input / b, 0};
  const double steps = static_cast<double>(std::max<std::int64_t>(0, shape.max_output_tokens - 1));
  double seqs = b;
  if (!static_padding && steps > 0) {
    // Each sequence decodes max(1, its output) - 1 times.
    const double decode_tokens = std::max(0.0, static_cast<double>(shape.output_tokens) - b);
    seqs = std::min(b, decode_tokens / steps);
  }
  const double context0 = seqs * input / b;
  return step_seconds(c, m, prefill) + decode_steps_s(c, m, seqs, context0, steps);
}

double host_copy_bytes(const InstanceSpec& instance, std::int64_t blocks, int block_tokens) {
  return model_kv_bytes_per_token(instance.model) * double(block_tokens) * double(blocks);
}

TimeUs host_copy_time_us(const InstanceSpec& instance, std::int64_t blocks, int block_tokens) {
  if (blocks <= 0) return 0;
  if (!(instance.host_link.bandwidth_gbps > 0)) {
    throw Error("instance '" + instance.name + "' copies KV blocks to and from host memory but its host_link has no bandwidth");
  }
  const double bytes = host_copy_bytes(instance, blocks, block_tokens);
  const double seconds = instance.host_link.latency_us * 1e-6 + bytes / (instance.host_link.bandwidth_gbps * 1e9 * instance.tp());
  return round_step_us(seconds);
}

TimeUs round_step_us(double seconds) {
  return std::max<TimeUs>(1, static_cast<TimeUs>(std::llround(seconds * 1e6)));
}

void decode_times_us(const StepCoefficients& c, const ModelTerms& m, std::int64_t seqs, std::int64_t context_tokens,
                     std::int64_t steps, std::vector<TimeUs>& out) {
  append_decode_times(seqs, context_tokens, steps, out, [&](const IterationShape& shape) {
    return round_step_us(step_seconds(c, m, step_work(shape)));
  });
}

}  // namespace twinfer
