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

#include "core/cluster_config.h"
#include "policies/cluster_view.h"
#include "serving/recorder.h"
#include "core/request.h"
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
  // `r` whose model is the chosen version. The split picks among the versions that serve in
  // `workers` (a ready worker that is not down). A request keeps its version for every later call
  // (its retries) while that version serves; it is picked again only when its version stopped
  // serving and another one serves (a version retired by a hot swap).
  const Request& resolve(const Request& r, TimeUs now_us, const std::vector<WorkerView>& workers, Request& scratch);
  // The request as resolve() last chose for it, without picking again (r itself when unresolved).
  const Request& chosen(const Request& r, Request& scratch) const;
  // Forgets request `id`'s choice (a server reuses ids once their request ended).
  void forget(RequestId id) { chosen_.erase(id); }

  // The versions of `model`'s family when the family has a split, else null.
  const std::vector<std::string>* family_versions(const std::string& model) const;
  // The split's largest share for the version `model` over [from_us, to_us] (TrafficSplit::max_share);
  // negative when `model` is no version under a split or the split cannot tell.
  double max_share(const std::string& model, TimeUs from_us, TimeUs to_us) const;

 private:
  struct Family {
    std::vector<std::string> versions;
    std::unique_ptr<TrafficSplit> split;
  };
  const Family* family_of(const std::string& model) const;
  bool serves(const std::string& version, const std::vector<WorkerView>& workers) const;

  const ClusterConfig& cluster_;
  std::map<std::string, Family> splits_;
  std::unordered_map<RequestId, std::string> chosen_;
  std::vector<bool> serving_;  // reused buffer
};

// Per-model figures (Recorder::summary_by grouped by each worker's model, so by version), or null
// when the cluster serves one model.
nlohmann::json per_model_summary(const Recorder& recorder, const ClusterConfig& cluster);

}  // namespace twinfer
