// predictive: forecasts the pool's arrival rate a cold start ahead and sizes the pool from the cost
// model so that each replica runs a batch that keeps the TPOT objective.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "policies/autoscaler.h"
#include "policies/autoscalers/rate_forecast.h"
#include "policies/autoscalers/stabilization.h"
#include "policies/cost_model.h"
#include "core/params.h"
#include "core/slo.h"

namespace twinfer {

// Bounds on the steady-state batch of one replica.
struct CapacityLimits {
  int max_batch = 256;                  // sequences decoding at once, >= 1
  double tpot_ms = 0;                   // decode iteration time bound; 0: none
  double latency_ms = 0;                // time from first to last token of a long answer; 0: none
  double gpu_memory_utilization = 0.9;  // fraction of device memory for weights + KV cache
};

// What one replica sustains under continuous batching at steady state, for requests of `input`
// prompt tokens and `output` generated tokens:
//   t(B)      = iteration_time_us(decode_seqs = B, decode_context_tokens = B * (input + output / 2))
//   t_prefill = iteration_time_us(prefill_tokens = input, prefill_attn_pairs = input * input)
//   mu(B)     = B / (output * t(B) + B * t_prefill) requests per microsecond (x 1e6 per second):
//               in the time B requests take to decode their `output` tokens together, each of them
//               also had its prompt prefilled.
// B is the largest batch <= max_batch with t(B) <= tpot_ms (when bounded) whose KV cache fits:
//   B * (input + output) * kv_bytes_per_token <= mem_gb * 1e9 * tp * gpu_memory_utilization - weights
// (no KV bound for an opaque model without kv_bytes_per_token), and, when latency_ms > 0, whose
// answer of `tail_output` tokens (a long one) decodes within it, the other requests' prefills
// included: tail_output * (t(B) + B * t_prefill / output) <= latency_ms. When not even B = 1 meets
// the bounds, B = 1 and `bounds_met` is false.
struct ReplicaCapacity {
  double requests_per_s = 0;
  int batch = 0;               // B
  TimeUs decode_iteration_us = 0;  // t(B)
  TimeUs prefill_us = 0;           // t_prefill
  bool bounds_met = true;
};

// REQUIRES: input_tokens >= 1, output_tokens >= 1, limits.max_batch >= 1. tail_output < 1: output.
ReplicaCapacity replica_capacity(const CostModel& cost, const InstanceSpec& instance, std::int64_t input_tokens,
                                 std::int64_t output_tokens, const CapacityLimits& limits,
                                 std::int64_t tail_output = 0);

// Each decision:
//  1. observes the rate arrivals / interval (req/s) and, when there were arrivals, smooths the mean
//     request shape: shape = shape_alpha * sample mean + (1 - shape_alpha) * shape (and the same
//     for the 95th percentile of output tokens, the tail);
//  2. forecasts the rate h = cold_start_us + interval_us ahead (h / interval_us intervals);
//  3. recommends ceil(forecast * (1 + headroom) / (mu * target_utilization)), mu = replica_capacity()
//     for the shape and tail rounded to about 1.6% (cached per rounded shape and instance); with
//     latency_bound and an SLO latency, limits.latency_ms = SLO latency - SLO TTFT (the whole
//     latency when that leaves nothing), so that a tail answer meets the latency SLO;
//  4. scales up at once; scales down to the MAX recommended over scale_down_stabilization_s; clamps.
// Before any arrival (no shape known) and with no instance or interval, it keeps current().
class PredictiveAutoscaler : public Autoscaler {
 public:
  struct Options {
    std::string forecast = "holt";        // "holt" | "ewma"
    double alpha = 0.5;                   // level smoothing, (0, 1]
    double beta = 0.3;                    // trend smoothing (holt), [0, 1]
    double shape_alpha = 0.2;             // request shape smoothing, (0, 1]
    double headroom = 0.1;                // extra capacity over the forecast, >= 0
    double error_margin = 0;              // forecast errors (EWMA of |error|) added to the forecast, >= 0
    double target_utilization = 0.8;      // wanted fraction of mu per replica, (0, 1]
    double scale_down_stabilization_s = 120;
    bool latency_bound = true;            // size so that a tail answer meets the SLO's latency
    CapacityLimits limits;                // "max_batch", "tpot_ms", "gpu_memory_utilization"
  };
  // Reads the keys above (as named; limits' keys at the top level) and checks ranges. An SLO with
  // tpot_ms > 0 replaces the "tpot_ms" parameter; with latency_ms > 0 and latency_bound, it sets
  // limits.latency_ms. Does not call p.done().
  static Options read_options(JsonParams& p, const SloSpec& slo);

  // `cost` is borrowed and outlives the autoscaler.
  PredictiveAutoscaler(const Options& options, const CostModel& cost);
  ScaleDecision decide(const PoolSample& sample) override;
  std::string name() const override { return "predictive"; }

 private:
  void observe_shape(const PoolSample& s);
  const ReplicaCapacity& capacity_for(const InstanceSpec& instance);

  Options options_;
  const CostModel& cost_;
  std::unique_ptr<RateForecaster> forecaster_;
  double next_forecast_ = -1;  // the previous decision's one-interval-ahead forecast; -1: none yet
  double error_ = 0;           // EWMA (alpha) of |rate - next_forecast_|
  StabilizationWindows windows_;
  bool shape_known_ = false;
  double input_tokens_ = 0;   // smoothed mean shape
  double output_tokens_ = 0;
  double tail_output_tokens_ = 0;  // smoothed 95th percentile of output tokens
  const InstanceSpec* cached_instance_ = nullptr;
  std::map<std::tuple<std::int64_t, std::int64_t, std::int64_t>, ReplicaCapacity> capacity_cache_;
};

}  // namespace twinfer
