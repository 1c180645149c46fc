#include "policies/splits/version_choice.h"

#include <set>

#include "policies/error.h"
#include "policies/registry.h"

namespace twinfer {

VersionChoice::VersionChoice(const ClusterConfig& cluster, const nlohmann::json& splits, std::uint64_t seed) {
  if (splits.is_null()) return;
  const std::string where = "policies.traffic_split";
  if (!splits.is_object()) {
    throw Error(where + ": expected an object from model family to split, e.g. {\"chat\": {\"name\": \"weighted\", "
                        "\"weights\": {\"chat-v1\": 90, \"chat-v2\": 10}}}, got " + splits.dump());
  }
  std::uint64_t k = 0;
  for (const auto& [family, spec] : splits.items()) {
    std::vector<std::string> versions = cluster.versions_of(family);
    if (versions.empty()) {
      std::set<std::string> families;
      for (const auto& m : cluster.models) {
        if (!m.version_of.empty()) families.insert(m.version_of);
      }
      std::string known;
      for (const auto& f : families) known += (known.empty() ? "" : ", ") + f;
      throw Error(where + "." + family + ": no model is a version of '" + family + "' (cluster.models.*.version_of); " +
                  (known.empty() ? "the config has no versioned models" : "families: " + known));
    }
    PolicyContext ctx;
    ctx.seed = seed + k++;
    Family f;
    f.versions = std::move(versions);
    f.split = traffic_split_registry().make(spec, ctx, where + "." + family);
    splits_.emplace(family, std::move(f));
  }
}

VersionChoice::~VersionChoice() = default;

const Request& VersionChoice::resolve(const Request& r, TimeUs now_us, Request& scratch) {
  if (splits_.empty()) return r;
  auto family = splits_.find(r.model);
  if (family == splits_.end()) return r;
  auto it = chosen_.find(r.id);
  if (it == chosen_.end()) {
    it = chosen_.emplace(r.id, family->second.split->pick(r, family->second.versions, now_us)).first;
  }
  scratch = r;
  scratch.model = it->second;
  return scratch;
}

nlohmann::json per_model_summary(const Recorder& recorder, const ClusterConfig& cluster) {
  if (cluster.models.size() < 2) return nullptr;
  std::vector<std::string> model_of_worker;
  for (const auto& inst : cluster.instances) model_of_worker.push_back(inst.model.name);
  return recorder.summary_by(model_of_worker);
}

}  // namespace twinfer
