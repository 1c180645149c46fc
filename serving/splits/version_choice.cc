#include "serving/splits/version_choice.h"

#include <algorithm>
#include <set>

#include "core/error.h"
#include "policies/registry.h"

namespace twinfer {

VersionChoice::VersionChoice(const ClusterConfig& cluster, const nlohmann::json& splits, std::uint64_t seed)
    : cluster_(cluster) {
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
    f.split->max_share(f.versions.front(), f.versions, 0, 0);  // a weight for an unknown version fails here
    splits_.emplace(family, std::move(f));
  }
}

VersionChoice::~VersionChoice() = default;

bool VersionChoice::serves(const std::string& version, const std::vector<WorkerView>& workers) const {
  for (const WorkerView& w : workers) {
    if (w.lifecycle == Lifecycle::kReady && w.health != Health::kDown && w.model() == version) return true;
  }
  return false;
}

const Request& VersionChoice::resolve(const Request& r, TimeUs now_us, const std::vector<WorkerView>& workers,
                                      Request& scratch) {
  if (splits_.empty()) return r;
  auto family = splits_.find(r.model);
  if (family == splits_.end()) return r;
  const std::vector<std::string>& versions = family->second.versions;
  serving_.assign(versions.size(), false);
  for (std::size_t i = 0; i < versions.size(); ++i) serving_[i] = serves(versions[i], workers);
  const bool any_serving = std::find(serving_.begin(), serving_.end(), true) != serving_.end();
  auto it = chosen_.find(r.id);
  const bool keep = it != chosen_.end() &&
                    (!any_serving || serving_[std::size_t(std::find(versions.begin(), versions.end(), it->second) -
                                                          versions.begin())]);
  if (!keep) {
    std::string version = family->second.split->pick(r, versions, serving_, now_us);
    it = chosen_.insert_or_assign(r.id, std::move(version)).first;
  }
  scratch = r;
  scratch.model = it->second;
  return scratch;
}

const Request& VersionChoice::chosen(const Request& r, Request& scratch) const {
  auto it = chosen_.find(r.id);
  if (it == chosen_.end()) return r;
  scratch = r;
  scratch.model = it->second;
  return scratch;
}

const VersionChoice::Family* VersionChoice::family_of(const std::string& model) const {
  for (const auto& m : cluster_.models) {
    if (m.name != model || m.version_of.empty()) continue;
    auto it = splits_.find(m.version_of);
    return it == splits_.end() ? nullptr : &it->second;
  }
  return nullptr;
}

const std::vector<std::string>* VersionChoice::family_versions(const std::string& model) const {
  const Family* f = family_of(model);
  return f ? &f->versions : nullptr;
}

double VersionChoice::max_share(const std::string& model, TimeUs from_us, TimeUs to_us) const {
  const Family* f = family_of(model);
  return f ? f->split->max_share(model, f->versions, from_us, to_us) : -1.0;
}

nlohmann::json per_model_summary(const Recorder& recorder, const ClusterConfig& cluster) {
  if (cluster.models.size() < 2) return nullptr;
  std::vector<std::string> model_of_worker;
  for (const auto& inst : cluster.instances) model_of_worker.push_back(inst.model.name);
  return recorder.summary_by(model_of_worker);
}

}  // namespace twinfer
