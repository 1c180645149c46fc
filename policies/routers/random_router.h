// Random: each request goes to a candidate worker drawn uniformly.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/params.h"
#include "policies/router.h"

namespace twinfer {

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
};

}  // namespace twinfer
