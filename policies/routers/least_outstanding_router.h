// Least outstanding: each request goes to the candidate worker with the fewest requests waiting or
// running.
#pragma once

#include <string>
#include <vector>

#include "core/params.h"
#include "policies/router.h"
#include "policies/routers/model_index.h"

namespace twinfer {

// Picks the candidate with the smallest WorkerView::outstanding(). Ties are broken round-robin:
// the first tied worker at or after the one following the previous pick, in index order, so an
// idle homogeneous cluster is filled evenly rather than always from worker 0.
//
// Slow start (slow_start_s > 0): a worker that a cold start made ready less than slow_start_s ago
// scores (outstanding + 1) / f instead of outstanding + 1, f = max(0.1, age / slow_start_s), so
// that a newcomer's queue ramps up over the window instead of taking every arrival until it holds
// as many requests as the others (which makes its first iterations prefill all of them together).
//
// Without slow start, where the driver says which workers' views changed (ClusterView::changes: the
// simulator), the router keeps a MinTree per requested model over its healthy ready workers'
// outstanding counts and picks in O(log n + changes) instead of scanning every worker; it picks
// exactly what the scan picks (checked in debug builds), so the simulator and the runtime, which
// scans, still decide alike.
class LeastOutstandingRouter : public Router {
 public:
  struct Options {
    double slow_start_s = 0;  // >= 0; 0: off
  };
  // Reads "slow_start_s" and checks it. Does not call p.done().
  static Options read_options(JsonParams& p);

  LeastOutstandingRouter() = default;
  explicit LeastOutstandingRouter(Options options) : options_(options) {}
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "least_outstanding"; }
  ViewUse view_use() const override { return ViewUse::kQueues; }

 private:
  // The indexed pick, or -1 where the scan must decide (no index offered, slow start, no healthy
  // ready worker serves the model: suspect fallback or rejection).
  int indexed_pick(const Request& request, const ClusterView& view);
  int scanned_pick(const Request& request, const ClusterView& view);

  Options options_;
  int tie_start_ = 0;
  std::vector<int> candidates_;
  ModelIndex<OutstandingTree> index_;
};

}  // namespace twinfer
