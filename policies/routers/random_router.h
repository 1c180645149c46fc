// Random: each request goes to a candidate worker drawn uniformly.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/params.h"
#include "policies/router.h"
#include "policies/routers/model_index.h"

namespace twinfer {

// Where the driver says which workers' views changed (the simulator), the candidates are drawn from
// a CandidateSet per requested model in O(log n) instead of a scan; the same draws pick the same
// workers either way.
class RandomRouter : public Router {
 public:
  struct Options {
    std::uint64_t seed = 0;  // the same seed gives the same picks on every platform
  };
  // Reads "seed" (default: `default_seed`, the run's seed). Does not call p.done().
  static Options read_options(JsonParams& p, std::uint64_t default_seed);

  explicit RandomRouter(const Options& options) : rng_(options.seed) {}
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "random"; }
  ViewUse view_use() const override { return ViewUse::kMembership; }

 private:
  std::mt19937_64 rng_;
  std::vector<int> candidates_;
  ModelIndex<CandidateSet> index_;
};

}  // namespace twinfer
