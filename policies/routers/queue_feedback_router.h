// Queue feedback: weighted random routing where shorter queues get larger weights.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/params.h"
#include "policies/router.h"

namespace twinfer {

// Draws a candidate with probability proportional to
//   weight = max(min_weight, max_weight - outstanding()).
// Unlike least outstanding, it never starves a loaded worker completely and does not herd a burst
// of requests onto one idle worker between view updates.
class QueueFeedbackRouter : public Router {
 public:
  struct Options {
    double max_weight = 100;  // weight of an empty worker
    double min_weight = 1;    // floor, > 0
    std::uint64_t seed = 0;
  };
  // Reads "max_weight", "min_weight" and "seed" (default: `default_seed`). Does not call p.done().
  static Options read_options(JsonParams& p, std::uint64_t default_seed);

  explicit QueueFeedbackRouter(const Options& options);
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "queue_feedback"; }
  ViewUse view_use() const override { return ViewUse::kQueues; }

  double weight(const WorkerView& worker) const;

 private:
  Options options_;
  std::mt19937_64 rng_;
  std::vector<int> candidates_;
};

}  // namespace twinfer
