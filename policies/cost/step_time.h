// The step-time model shared by the roofline and the calibrated cost models: a roofline whose
// rates, overheads and communication terms are coefficients, either derived from a device profile
// (roofline) or fitted to measured steps (calibrated, see cost_fit.h).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/cluster_config.h"
#include "policies/cost_model.h"

namespace twinfer {

// The coefficients of one instance (device, model, tp), in seconds per unit:
//
//   compute = linear * linear_flops + attention * attention_flops
//   memory  = weights * weights_bytes + gemm_weights * weights_bytes * [tokens > 1] + kv * kv_bytes
//             + spill * max(0, weights_bytes + kv_bytes - cache_bytes)
//   step    = step + sequence * sequences + max(compute, memory) + comm_per_token * tokens + comm
//
// with, for an iteration of `tokens` = prefill tokens + decoding sequences:
//   linear_flops    = 2 * params * tokens                                (the linear layers)
//   attention_flops = 4 * layers * hidden * (prefill query-key pairs + decode context tokens)
//   weights_bytes   = the model's weights, read once per step
//   kv_bytes        = kv_bytes_per_token * (decode context + prefill cached prefix + tokens)
//                     (KV read, and the new tokens' KV written)
//   sequences       = sequences in the step (prefill chunks and decoding sequences)
// FLOPs and bytes are the whole instance's; the coefficients already divide by tp. gemm_weights is
// what a matrix-matrix product of the weights (a step of more than one token) costs beyond a
// matrix-vector one (a CPU's BLAS packs the weights: one more pass over them). The spill term
// charges the bytes a step touches beyond a cache of cache_bytes at a second, slower rate (on a
// CPU, the working set outgrowing the cache; 0 on a GPU, whose weights never fit its cache).
//
// `contention` is not part of a step's own time: it is the relative slowdown of a step while every
// other instance on its host is busy too (shared cores, caches and memory bandwidth); a simulator
// multiplies the step by 1 + contention * (busy others / others).
struct StepCoefficients {
  double step_s = 0;                 // per step: launches, scheduling, the engine's own work
  double sequence_s = 0;             // per sequence in the step: sampling, bookkeeping
  double linear_s_per_flop = 0;      // 1 / (linear-layer FLOP rate)
  double attention_s_per_flop = 0;   // 1 / (attention FLOP rate)
  double weights_s_per_byte = 0;     // 1 / (bandwidth reading weights)
  double gemm_weights_s_per_byte = 0;  // extra per weight byte in a step of more than one token
  double kv_s_per_byte = 0;          // 1 / (bandwidth reading and writing the KV cache)
  double spill_s_per_byte = 0;       // extra time per byte beyond the cache
  double cache_bytes = 0;            // bytes a step may touch before it spills
  double contention = 0;             // slowdown with every other instance of the host busy
  double comm_s_per_token = 0;       // tensor-parallel all-reduces: bandwidth term
  double comm_s = 0;                 // tensor-parallel all-reduces: latency term, per step
};

// The coefficients' names in a cost file: the fitted features' (see cost_fit.h), then the cache
// size and the contention.
constexpr std::array<const char*, 10> kFittedCoefficients = {
    "step_us",           "sequence_us",              "linear_ps_per_flop", "attention_ps_per_flop",
    "weights_ps_per_byte", "kv_ps_per_byte",         "spill_ps_per_byte",  "gemm_weights_ps_per_byte",
    "cache_mb",          "contention"};

// The work of one step, in token counts (real-valued: a shrinking batch averages to fractions).
struct StepWork {
  double tokens = 0;          // prefill tokens + decoding sequences
  double sequences = 0;       // sequences in the step
  double attn_pairs = 0;      // prefill query-key pairs + decode context tokens
  double kv_read_tokens = 0;  // decode context + cached prefix of prefill chunks
};

// What an instance's model makes of a step's work.
struct ModelTerms {
  double flops_per_token = 0;      // 2 * params
  double flops_per_attn_pair = 0;  // 4 * layers * hidden
  double weights_bytes = 0;
  double kv_bytes_per_token = 0;
  static ModelTerms of(const ModelSpec& model);
};

StepWork step_work(const IterationShape& shape);

// The roofline's coefficients for an instance: the device profile's peak FLOP rate and bandwidth
// times their efficiencies (0: the profile's), over tp GPUs, plus ring all-reduces over the host's
// gpu_link for tp > 1 (2 per layer of tokens * hidden * bytes_per_param bytes, each costing
// 2 (tp-1)/tp * bytes / link bandwidth + 2 (tp-1) * link latency), and `step_overhead_us`.
// Throws twinfer::Error for tp > 1 without a gpu_link bandwidth.
StepCoefficients roofline_coefficients(const InstanceSpec& instance, double compute_efficiency,
                                       double bandwidth_efficiency, double step_overhead_us);

// The all-reduce terms alone (zero for tp 1), as roofline_coefficients derives them.
void set_comm_terms(const InstanceSpec& instance, StepCoefficients& c);

// One step, in seconds.
double step_seconds(const StepCoefficients& c, const ModelTerms& m, const StepWork& w);

// A request-level batch, in seconds: one prefill step over all its input tokens (query-key pairs
// input^2 / b: equal lengths), then max_output_tokens - 1 decode steps (see RooflineCostModel for
// static_padding and the shrinking batch), summed in closed form.
double request_batch_seconds(const StepCoefficients& c, const ModelTerms& m, const RequestBatchShape& shape,
                             bool static_padding);

// Seconds to microseconds, rounded, at least 1.
TimeUs round_step_us(double seconds);

// The bytes of `blocks` KV blocks of `block_tokens` tokens of the instance's model (all its GPUs').
double host_copy_bytes(const InstanceSpec& instance, std::int64_t blocks, int block_tokens);

// The time `blocks` KV blocks of `block_tokens` tokens take to copy between host memory and the
// instance's GPUs: each GPU moves its share of every block over its own host link (PCIe), one
// latency for the batch of copies. 0 for no blocks. Throws twinfer::Error naming the instance when
// its host link has no bandwidth.
TimeUs host_copy_time_us(const InstanceSpec& instance, std::int64_t blocks, int block_tokens);

// CostModel::decode_times_us() for a model that times an iteration as
// round_step_us(step_seconds(c, m, step_work(shape))).
void decode_times_us(const StepCoefficients& c, const ModelTerms& m, std::int64_t seqs, std::int64_t context_tokens,
                     std::int64_t steps, std::vector<TimeUs>& out);

}  // namespace twinfer
