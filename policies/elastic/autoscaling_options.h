// The "autoscaling" section of a run config: which autoscaler sizes each pool, how often, within
// which bounds, and what a cold start costs.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/cluster_config.h"
#include "core/time.h"

namespace twinfer {

// A started replica is ready after startup_s (process/container start, runtime init) plus the
// time to read its share of the weights (weights_bytes / tp) at load_gbps (1e9 bytes/s, storage or
// network to host memory to device).
struct ColdStartOptions {
  double startup_s = 10;
  double load_gbps = 2;
};

struct AutoscalingOptions {
  nlohmann::json autoscaler;          // policy spec; null: no autoscaling (every worker ready throughout)
  TimeUs interval_us = 15'000'000;    // decision period
  int min_replicas = 1;               // per pool (the workers serving one model); >= 1
  int max_replicas = 0;               // per pool; 0: every instance of the pool
  int initial_replicas = 0;           // ready at time 0; 0: min_replicas
  ColdStartOptions cold_start;

  bool enabled() const { return !autoscaler.is_null(); }
};

// Parses the "autoscaling" object: {"autoscaler": spec, "interval_s", "min_replicas",
// "max_replicas", "initial_replicas", "cold_start": {"startup_s", "load_gbps"}}. `where` is its key
// path for messages. Throws twinfer::Error naming the key on an unknown key or a bad value.
AutoscalingOptions parse_autoscaling(const nlohmann::json& j, const std::string& where);

// How long a started replica of `instance` takes to become ready.
TimeUs cold_start_us(const ColdStartOptions& options, const InstanceSpec& instance);

}  // namespace twinfer
