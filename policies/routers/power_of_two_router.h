// Power of d choices: sample d distinct candidate workers at random and take the least loaded.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/params.h"
#include "policies/router.h"
#include "policies/routers/model_index.h"

namespace twinfer {

// Samples `choices` distinct candidates uniformly (all of them when there are fewer) and picks the
// one with the fewest outstanding() requests; among equals, the one sampled first. Where the driver
// says which workers' views changed (the simulator), the samples come from a CandidateSet per
// requested model in O(choices log n) instead of a scan of every worker; the same draws pick the same
// workers either way.
class PowerOfTwoRouter : public Router {
 public:
  struct Options {
    int choices = 2;         // d >= 1; 1 is plain random, >= the worker count is least outstanding
    std::uint64_t seed = 0;
  };
  // Reads "choices" and "seed" (default: `default_seed`). Does not call p.done().
  static Options read_options(JsonParams& p, std::uint64_t default_seed);

  explicit PowerOfTwoRouter(const Options& options);
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "power_of_two"; }
  ViewUse view_use() const override { return ViewUse::kQueues; }

 private:
  Options options_;
  static constexpr int kMaxIndexedChoices = 16;  // more: the scan (the shuffle's swaps kept in a list)
  // The pick from collect_candidates()'s list (-1: none), drawing from `rng`.
  int scanned_pick(const Request& request, const ClusterView& view, std::mt19937_64& rng);

  std::mt19937_64 rng_;
  std::vector<int> candidates_;
  ModelIndex<CandidateSet> index_;
  std::vector<std::pair<std::size_t, int>> moved_;  // the sparse shuffle's positions that hold another worker
};

}  // namespace twinfer
