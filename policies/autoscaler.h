// Autoscaler: how many replicas a pool of workers should have. A pool is the set of workers that
// serve one model (see serving/elastic/elastic_cluster.h); the driver asks the pool's autoscaler once per
// decision interval and starts (with a cold start) or drains workers to reach the answer.
#pragma once

#include <cstdint>
#include <string>

#include "core/cluster_config.h"
#include "core/time.h"

namespace twinfer {

// What the driver measured of one pool at `now_us`, over the interval since the previous sample.
struct PoolSample {
  TimeUs now_us = 0;
  TimeUs interval_us = 0;          // since the previous decision (the first: the configured interval)
  int ready = 0;                   // serving replicas
  int starting = 0;                // cold-starting: loading their model, ready later
  int draining = 0;                // finishing their queues; take no new requests, then stop
  int min_replicas = 1;            // bounds of the pool (ready + starting)
  int max_replicas = 1;
  double utilization = 0;          // mean busy fraction of the ready replicas over the interval, [0, 1]
  double kv_used_fraction = 0;     // mean KV-cache use of the ready replicas now, [0, 1]
  int waiting = 0;                 // requests queued on the pool's workers now (not yet running)
  int running = 0;                 // sequences in the pool's running batches now
  std::int64_t arrivals = 0;       // requests routed to the pool during the interval
  double mean_input_tokens = 0;    // over those arrivals (0 when none)
  double mean_output_tokens = 0;
  double p95_output_tokens = 0;    // 95th percentile (nearest rank) of their output tokens (0 when none)
  TimeUs cold_start_us = 0;        // how long a started replica takes to become ready
  const InstanceSpec* instance = nullptr;  // a replica of the pool: device, model, tensor parallelism

  int current() const { return ready + starting; }  // the pool's size as autoscalers count it
};

struct ScaleDecision {
  int desired = 0;      // replicas wanted (ready + starting); the driver clamps to [min, max]
  std::string reason;   // why, for the summary and the timeline ("utilization 0.91 > 0.60")
};

// Thread safety: called from one thread at a time. An autoscaler serves one pool and may keep
// state between calls (stabilization windows, forecasts); samples come in time order.
class Autoscaler {
 public:
  virtual ~Autoscaler() = default;
  virtual ScaleDecision decide(const PoolSample& sample) = 0;
  virtual std::string name() const = 0;
};

}  // namespace twinfer
