#include "policies/autoscalers/predictive_autoscaler.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "core/model_dimensions.h"

namespace twinfer {
namespace {

// Sequences whose KV cache fits beside the weights; -1 when the model declares no KV size.
std::int64_t kv_batch_bound(const InstanceSpec& instance, std::int64_t tokens_per_sequence,
                            double gpu_memory_utilization) {
  const double per_token = model_kv_bytes_per_token(instance.model);
  if (per_token <= 0) return -1;
  const double usable = instance.device.mem_gb * 1e9 * instance.tp() * gpu_memory_utilization;
  const double free_bytes = usable - model_weights_bytes(instance.model);
  if (free_bytes <= 0) return 0;
  return static_cast<std::int64_t>(std::floor(free_bytes / (per_token * static_cast<double>(tokens_per_sequence))));
}

TimeUs decode_iteration_us(const CostModel& cost, const InstanceSpec& instance, std::int64_t batch,
                           std::int64_t input, std::int64_t output) {
  IterationShape shape;
  shape.decode_seqs = batch;
  // On average a decoding sequence is half-way through its output.
  shape.decode_context_tokens = batch * input + batch * output / 2;
  return cost.iteration_time_us(instance, shape);
}

// Rounds a mean token count so that a stable shape hits the capacity cache: below 64 to the
// nearest integer (at least 1), else to a multiple of the largest power of two <= x / 32 (relative error <= 1/64).
std::int64_t rounded_tokens(double x) {
  if (x < 64) return std::max<std::int64_t>(1, std::llround(x));
  std::int64_t step = 1;
  while (step * 2 <= x / 32) step *= 2;
  return std::llround(x / static_cast<double>(step)) * step;
}

}  // namespace

ReplicaCapacity replica_capacity(const CostModel& cost, const InstanceSpec& instance, std::int64_t input,
                                 std::int64_t output, const CapacityLimits& limits, std::int64_t tail_output) {
  assert(input >= 1 && output >= 1 && limits.max_batch >= 1);
  ReplicaCapacity c;
  IterationShape prefill;
  prefill.prefill_tokens = input;
  prefill.prefill_attn_pairs = input * input;
  c.prefill_us = cost.iteration_time_us(instance, prefill);

  std::int64_t batch = limits.max_batch;
  const std::int64_t kv_bound = kv_batch_bound(instance, input + output, limits.gpu_memory_utilization);
  if (kv_bound >= 0) batch = std::min(batch, kv_bound);
  const TimeUs tpot_us = limits.tpot_ms > 0 ? us_from_ms(limits.tpot_ms) : kNever;
  const double tail = static_cast<double>(tail_output >= 1 ? tail_output : output);
  auto meets_bounds = [&](std::int64_t b) {
    const TimeUs t = decode_iteration_us(cost, instance, b, input, output);
    if (t > tpot_us) return false;
    if (limits.latency_ms <= 0) return true;
    const double per_token_us = static_cast<double>(t) + static_cast<double>(b) *
                                                             static_cast<double>(c.prefill_us) /
                                                             static_cast<double>(output);
    return tail * per_token_us <= limits.latency_ms * 1e3;
  };
  // The decode iteration grows with the batch, so the first batch from the top that meets the
  // bounds is the largest one.
  while (batch >= 1 && !meets_bounds(batch)) --batch;
  if (batch < 1) {
    batch = 1;
    c.bounds_met = false;
  }
  c.batch = static_cast<int>(batch);
  c.decode_iteration_us = decode_iteration_us(cost, instance, batch, input, output);
  const double cycle_us = static_cast<double>(output) * static_cast<double>(c.decode_iteration_us) +
                          static_cast<double>(batch) * static_cast<double>(c.prefill_us);
  c.requests_per_s = cycle_us > 0 ? static_cast<double>(batch) * 1e6 / cycle_us : 0;
  return c;
}

PredictiveAutoscaler::Options PredictiveAutoscaler::read_options(JsonParams& p, const SloSpec& slo) {
  Options o;
  p.get("forecast", o.forecast);
  p.get("alpha", o.alpha);
  p.get("beta", o.beta);
  p.get("shape_alpha", o.shape_alpha);
  p.get("headroom", o.headroom);
  p.get("error_margin", o.error_margin);
  p.get("target_utilization", o.target_utilization);
  p.get("scale_down_stabilization_s", o.scale_down_stabilization_s);
  p.get("latency_bound", o.latency_bound);
  p.get("max_batch", o.limits.max_batch);
  p.get("tpot_ms", o.limits.tpot_ms);
  p.get("gpu_memory_utilization", o.limits.gpu_memory_utilization);
  p.require(o.forecast == "holt" || o.forecast == "ewma", "forecast",
            "must be \"holt\" or \"ewma\", got \"" + o.forecast + "\"");
  p.require(o.alpha > 0 && o.alpha <= 1, "alpha", "must be in (0, 1], got " + decimal(o.alpha, 3));
  p.require(o.beta >= 0 && o.beta <= 1, "beta", "must be in [0, 1], got " + decimal(o.beta, 3));
  p.require(o.shape_alpha > 0 && o.shape_alpha <= 1, "shape_alpha",
            "must be in (0, 1], got " + decimal(o.shape_alpha, 3));
  p.require(o.headroom >= 0, "headroom", "must be >= 0, got " + decimal(o.headroom, 3));
  p.require(o.error_margin >= 0, "error_margin", "must be >= 0, got " + decimal(o.error_margin, 3));
  p.require(o.target_utilization > 0 && o.target_utilization <= 1, "target_utilization",
            "must be in (0, 1], got " + decimal(o.target_utilization, 3));
  p.require(o.scale_down_stabilization_s >= 0, "scale_down_stabilization_s",
            "must be >= 0 seconds, got " + decimal(o.scale_down_stabilization_s, 3));
  p.require(o.limits.max_batch >= 1, "max_batch", "must be >= 1, got " + std::to_string(o.limits.max_batch));
  p.require(o.limits.tpot_ms >= 0, "tpot_ms", "must be >= 0 ms (0: no bound), got " + decimal(o.limits.tpot_ms, 3));
  p.require(o.limits.gpu_memory_utilization > 0 && o.limits.gpu_memory_utilization <= 1, "gpu_memory_utilization",
            "must be in (0, 1], got " + decimal(o.limits.gpu_memory_utilization, 3));
  if (slo.tpot_ms > 0) o.limits.tpot_ms = slo.tpot_ms;
  if (o.latency_bound && slo.latency_ms > 0) {
    o.limits.latency_ms = slo.latency_ms > slo.ttft_ms ? slo.latency_ms - slo.ttft_ms : slo.latency_ms;
  }
  return o;
}

PredictiveAutoscaler::PredictiveAutoscaler(const Options& options, const CostModel& cost)
    : options_(options),
      cost_(cost),
      forecaster_(make_rate_forecaster(options.forecast, options.alpha, options.beta)),
      windows_(0, us_from_s(options.scale_down_stabilization_s)) {}

void PredictiveAutoscaler::observe_shape(const PoolSample& s) {
  if (s.arrivals <= 0) return;
  const double tail = std::max(s.p95_output_tokens, s.mean_output_tokens);
  if (!shape_known_) {
    input_tokens_ = s.mean_input_tokens;
    output_tokens_ = s.mean_output_tokens;
    tail_output_tokens_ = tail;
    shape_known_ = true;
    return;
  }
  const double a = options_.shape_alpha;
  input_tokens_ = a * s.mean_input_tokens + (1 - a) * input_tokens_;
  output_tokens_ = a * s.mean_output_tokens + (1 - a) * output_tokens_;
  tail_output_tokens_ = a * tail + (1 - a) * tail_output_tokens_;
}

const ReplicaCapacity& PredictiveAutoscaler::capacity_for(const InstanceSpec& instance) {
  if (cached_instance_ != &instance) {
    capacity_cache_.clear();
    cached_instance_ = &instance;
  }
  // The tail matters only under a latency bound; without one it stays out of the key.
  const std::int64_t tail = options_.limits.latency_ms > 0 ? rounded_tokens(tail_output_tokens_) : 0;
  const auto key = std::make_tuple(rounded_tokens(input_tokens_), rounded_tokens(output_tokens_), tail);
  auto it = capacity_cache_.find(key);
  if (it == capacity_cache_.end()) {
    it = capacity_cache_
             .emplace(key, replica_capacity(cost_, instance, std::get<0>(key), std::get<1>(key), options_.limits,
                                            std::get<2>(key)))
             .first;
  }
  return it->second;
}

ScaleDecision PredictiveAutoscaler::decide(const PoolSample& s) {
  const int current = s.current();
  if (s.interval_us <= 0) return finish_decision(windows_, s, current, 0, "no interval to measure a rate over");
  const double rate = static_cast<double>(std::max<std::int64_t>(0, s.arrivals)) / s_from_us(s.interval_us);
  if (next_forecast_ >= 0) error_ = options_.alpha * std::abs(rate - next_forecast_) + (1 - options_.alpha) * error_;
  forecaster_->observe(rate);
  next_forecast_ = forecaster_->forecast(1);
  observe_shape(s);
  if (!shape_known_) return finish_decision(windows_, s, current, 0, "no arrivals yet: request shape unknown");
  if (s.instance == nullptr) return finish_decision(windows_, s, current, 0, "no instance to size replicas for");

  const ReplicaCapacity& mu = capacity_for(*s.instance);
  const double steps_ahead = static_cast<double>(s.cold_start_us + s.interval_us) / static_cast<double>(s.interval_us);
  const double forecast = forecaster_->forecast(steps_ahead) + options_.error_margin * error_;
  const double per_replica = mu.requests_per_s * options_.target_utilization;
  const int recommended = per_replica > 0 ? ceil_replicas(forecast * (1 + options_.headroom) / per_replica) : current;
  std::string why = "rate " + decimal(rate) + " req/s, " + forecaster_->name() + " forecast " + decimal(forecast) +
                    " in " + decimal(s_from_us(s.cold_start_us + s.interval_us), 1) + " s" +
                    (options_.error_margin > 0 ? " (with " + decimal(options_.error_margin) + " x error " + decimal(error_) + ")" : "") +
                    "; capacity " +
                    decimal(mu.requests_per_s) + " req/s per replica (batch " + std::to_string(mu.batch) +
                    (options_.limits.latency_ms > 0 ? ", p95 answer " + decimal(tail_output_tokens_, 0) + " tokens" : "") +
                    (mu.bounds_met ? "" : ", TPOT/KV bounds unmet even alone") + ") x " +
                    decimal(options_.target_utilization) + " with headroom " + decimal(options_.headroom) +
                    ": recommend " + std::to_string(recommended);
  return finish_decision(windows_, s, recommended, 0, why);
}

}  // namespace twinfer
