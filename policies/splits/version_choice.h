// Carries out a run's traffic splits: the version of a model family that each request goes to,
// chosen at its first attempt and kept for its retries. Shared by the simulator and the runtime.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/cluster_config.h"
#include "policies/recorder.h"
#include "policies/request.h"
#include "policies/traffic_split.h"

namespace twinfer {

// Thread safety: none; the front end serializes calls.
class VersionChoice {
 public:
  // `splits` is the config's policies.traffic_split: null, or an object from family name (a name
  // that models give as their version_of) to a TrafficSplit spec, built with seed + its position.
  // A family without a split sends its requests to any of its versions. Throws twinfer::Error
  // naming "policies.traffic_split.<family>" for a family no model is a version of, or a bad spec.
  VersionChoice(const ClusterConfig& cluster, const nlohmann::json& splits, std::uint64_t seed);
  ~VersionChoice();

  bool active() const { return !splits_.empty(); }
  // The request to route: `r` itself when its model has no split; else `scratch`, set to a copy of
  // `r` whose model is the chosen version (the same for every call with r.id).
  const Request& resolve(const Request& r, TimeUs now_us, Request& scratch);

 private:
  struct Family {
    std::vector<std::string> versions;
    std::unique_ptr<TrafficSplit> split;
  };
  std::map<std::string, Family> splits_;
  std::unordered_map<RequestId, std::string> chosen_;
};

// Per-model figures (Recorder::summary_by grouped by each worker's model, so by version), or null
// when the cluster serves one model.
nlohmann::json per_model_summary(const Recorder& recorder, const ClusterConfig& cluster);

}  // namespace twinfer
