// One JSON config drives a whole run, simulated or real: the cluster, the policies, the workload's
// service-level objectives and the simulator's options.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cluster_config.h"
#include "policies/elastic/autoscaling_options.h"
#include "serving/protection.h"
#include "core/slo.h"

namespace twinfer {

struct WorkloadOptions {
  SloSpec slo;
  std::string trace;            // default trace path, resolved against the config's folder; may be empty
};

struct SimOptions {
  // "flow": payloads cross SimGrid links and share their bandwidth (contention);
  // "latency": each payload takes the route's latency plus its size over the route's narrowest
  //            link, with no sharing (faster to simulate); "none": payloads arrive at once.
  std::string network = "flow";
  double request_bytes_per_token = 4;  // payload of a request: 4-byte token ids
  double response_bytes_per_token = 4;
  double message_overhead_bytes = 512; // headers of every message
  bool timeline = true;                // write timeline.json
  bool step_log = false;               // write steps.csv: every step's shape and duration
  // The simulator's model of the runtime's own handoff of a request to its worker (router thread,
  // transport queue, worker wake-up), beyond the network model: every request reaches its
  // worker's queue this long after the router sent it. `twinfer calibrate` measures it.
  double dispatch_us = 0;
  // Carry out runs of steady decode steps (Batcher::steady_decode_steps) without asking the batcher
  // each step, and let workers run them ahead of a router that reads no more than queue lengths
  // (ViewUse). The outputs are the same either way; false is for checking that they are.
  bool fast_forward = true;
};

struct RunConfig {
  std::string source;           // the file it came from ("" when built in memory)
  std::string base_dir;         // folder of `source`, for relative paths
  nlohmann::json raw;           // the whole config after overrides
  ClusterConfig cluster;
  nlohmann::json admission;     // policy specs: a name or {"name": ..., params}
  nlohmann::json router;
  nlohmann::json batcher;
  nlohmann::json cost_model;
  nlohmann::json traffic_split;  // null: a request for a model family goes to any of its versions
  WorkloadOptions workload;
  SimOptions sim;
  ProtectionOptions protection;  // "protection" (optional): health, retries, limits, shedding
  AutoscalingOptions autoscaling;  // "autoscaling" (optional): pools sized by an autoscaler
};

// Applies one "a.b.c=value" override to `config`. The value is JSON if it parses as JSON, else a
// string. Setting a key under a policy given as a plain name ("router": "round_robin") turns it into
// {"name": "round_robin", key: value}. Numeric segments index arrays. Throws twinfer::Error.
void apply_override(nlohmann::json& config, const std::string& assignment);

// Parses a whole config. Unknown keys anywhere are errors naming their path. `source` names the
// file for messages and sets base_dir.
RunConfig parse_run_config(const nlohmann::json& config, const std::string& source);

// Reads `path`, applies `overrides` in order, and parses. Errors name the file (and line:column for
// JSON syntax errors).
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace twinfer
