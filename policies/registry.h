// Builds every policy from a name and JSON parameters. One registry per policy kind; built-in
// policies are registered on first use, and users (Python bindings) may add more.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/admission.h"
#include "policies/autoscaler.h"
#include "policies/batcher.h"
#include "policies/cost_model.h"
#include "core/params.h"
#include "policies/route_scorer.h"
#include "policies/router.h"
#include "policies/traffic_split.h"

namespace twinfer {

struct SloSpec;

// What a policy may need besides its parameters. Pointers are borrowed and outlive the policy.
struct PolicyContext {
  const CostModel* cost = nullptr;            // predictions (least_work, SJF, deadline)
  const InstanceSpec* instance = nullptr;     // batchers: the worker they batch for
  std::uint64_t seed = 0;                     // randomized policies seed their own generator
  std::string base_dir;                       // for policies that read files (profile tables)
  const SloSpec* slo = nullptr;               // the workload's SLO (predictive autoscaling)
};

template <class T>
class PolicyRegistry {
 public:
  // A factory reads its parameters through `params` (and must call params.done()).
  using Factory = std::function<std::unique_ptr<T>(JsonParams& params, const PolicyContext& ctx)>;

  explicit PolicyRegistry(std::string kind) : kind_(std::move(kind)) {}

  void add(const std::string& name, Factory factory) { factories_[name] = std::move(factory); }
  bool contains(const std::string& name) const { return factories_.count(name) > 0; }

  // `spec` is either a name ("round_robin") or an object {"name": ..., params...}. `where` is the
  // config key path for messages. Throws twinfer::Error on an unknown name (listing the valid ones),
  // an unknown key or a bad value.
  std::unique_ptr<T> make(const nlohmann::json& spec, const PolicyContext& ctx, const std::string& where) const {
    static const nlohmann::json kEmpty = nlohmann::json::object();
    std::string name;
    if (spec.is_string()) {
      name = spec.get<std::string>();
    } else if (spec.is_object() && spec.contains("name") && spec["name"].is_string()) {
      name = spec["name"].get<std::string>();
    } else {
      throw Error(where + ": expected a " + kind_ + " name or an object with \"name\", got " + spec.dump());
    }
    auto it = factories_.find(name);
    if (it == factories_.end()) {
      throw Error(where + ": unknown " + kind_ + " '" + name + "'; valid: " + joined_names());
    }
    JsonParams params(spec.is_object() ? spec : kEmpty, where + " (" + name + ")");
    return it->second(params, ctx);
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& kv : factories_) out.push_back(kv.first);
    return out;
  }
  std::string joined_names() const {
    std::string s;
    for (const auto& kv : factories_) s += (s.empty() ? "" : ", ") + kv.first;
    return s;
  }

 private:
  std::string kind_;
  std::map<std::string, Factory> factories_;
};

// The process-wide registries, with the built-in policies already in them. Each is defined beside
// its family's policies (e.g. policies/routers/builtin_routers.cc) with builtin_registry().
PolicyRegistry<Router>& router_registry();
PolicyRegistry<Batcher>& batcher_registry();
PolicyRegistry<Admission>& admission_registry();
PolicyRegistry<CostModel>& cost_model_registry();
PolicyRegistry<Autoscaler>& autoscaler_registry();
PolicyRegistry<TrafficSplit>& traffic_split_registry();
// The scored router's scorers beyond its built-in ones (none are registered until a user adds one).
PolicyRegistry<RouteScorer>& route_scorer_registry();

// Makes the process-wide registry of one kind, with the built-ins added by `add_builtins`. Use it
// as `static PolicyRegistry<Router>& r = builtin_registry<Router>("router", add_fn); return r;`.
// Never destroyed: policies may be built during static destruction of other objects.
template <class T>
PolicyRegistry<T>& builtin_registry(const char* kind, void (*add_builtins)(PolicyRegistry<T>&)) {
  auto* registry = new PolicyRegistry<T>(kind);
  add_builtins(*registry);
  return *registry;
}

}  // namespace twinfer
