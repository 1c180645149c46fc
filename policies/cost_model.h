// How long a batch or an iteration takes on a model instance. The simulator advances time with it;
// routers and the runtime use it for predictions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/cluster_config.h"
#include "core/time.h"

namespace twinfer {

// One iteration of continuous batching: prefill chunks of some sequences plus one decode token
// for each decoding sequence.
struct IterationShape {
  std::int64_t prefill_tokens = 0;        // sum of prefill chunk lengths
  std::int64_t prefill_seqs = 0;          // sequences with a prefill chunk
  std::int64_t prefill_prior_tokens = 0;  // sum over chunks of the tokens already in that sequence's cache
  std::int64_t prefill_attn_pairs = 0;    // sum over chunks of chunk * (prior + chunk): query-key pairs
  std::int64_t decode_seqs = 0;           // sequences producing one token this iteration
  std::int64_t decode_context_tokens = 0; // sum of those sequences' context lengths (KV read)
  bool empty() const { return prefill_tokens == 0 && decode_seqs == 0; }
};

// One request-level batch that runs to completion (dynamic batching, Triton-style).
struct RequestBatchShape {
  std::int64_t batch_size = 0;
  std::int64_t input_tokens = 0;       // sum over the batch, after padding if the batch pads
  std::int64_t max_input_tokens = 0;
  std::int64_t output_tokens = 0;      // sum over the batch (0 for non-generative models)
  std::int64_t max_output_tokens = 0;  // decode steps the batch runs for
};

// Thread safety: const methods are safe to call concurrently.
class CostModel {
 public:
  virtual ~CostModel() = default;
  // Time of one continuous-batching iteration. REQUIRES: !shape.empty().
  virtual TimeUs iteration_time_us(const InstanceSpec& instance, const IterationShape& shape) const = 0;
  // Time of a request-level batch, start to finish. REQUIRES: shape.batch_size > 0.
  virtual TimeUs batch_time_us(const InstanceSpec& instance, const RequestBatchShape& shape) const = 0;
  virtual std::string name() const = 0;
  // Appends to `out` the times of `steps` decode-only iterations of `seqs` sequences, iteration
  // j = 1..steps attending over context_tokens + seqs * j tokens in all (decode_context_tokens),
  // each as iteration_time_us() gives it; models may compute them faster than one call each.
  virtual void decode_times_us(const InstanceSpec& instance, std::int64_t seqs, std::int64_t context_tokens,
                               std::int64_t steps, std::vector<TimeUs>& out) const;
  // The relative slowdown of a step of `instance` while every other instance on its host is busy
  // (shared cores, caches, memory bandwidth); a simulator multiplies a step's time by
  // 1 + contention * (busy others / others). 0: instances do not slow each other.
  virtual double contention(const InstanceSpec& instance) const {
    (void)instance;
    return 0;
  }
};

// The loop behind CostModel::decode_times_us(): appends step_us(shape) for each iteration's shape.
template <class StepUs>
void append_decode_times(std::int64_t seqs, std::int64_t context_tokens, std::int64_t steps, std::vector<TimeUs>& out,
                         StepUs step_us) {
  IterationShape shape;
  shape.decode_seqs = seqs;
  shape.decode_context_tokens = context_tokens;
  for (std::int64_t j = 0; j < steps; ++j) {
    shape.decode_context_tokens += seqs;
    out.push_back(step_us(shape));
  }
}

// Predicted time of one request alone on an instance: a request-level batch of one.
TimeUs request_work_us(const CostModel& cost, const InstanceSpec& instance, std::int64_t input_tokens,
                       std::int64_t output_tokens);

}  // namespace twinfer
