// Cost-aware routing: each request goes to the cheapest worker that still meets the latency SLO,
// e.g. free edge devices first and paid, distant cloud devices only once the edge falls behind.
#pragma once

#include <string>
#include <vector>

#include "policies/cost_model.h"
#include "core/params.h"
#include "policies/router.h"

namespace twinfer {

struct SloSpec;

// For each candidate worker w (eligible; suspect workers only when no healthy one is):
//   predicted_latency_us(w) = 2 * w.instance->nic.latency_us     (round trip to the worker's host)
//                           + w.outstanding_work_us              (queueing, as least_work estimates it)
//                           + request_work_us(cost, instance, input_tokens, output_tokens)
//   price(w) = device.price_per_hour * tp                        (0 for owned devices)
// A worker meets the bound when predicted_latency_us <= (1 - headroom) * latency_ms * 1000 and it is
// not saturated (max_outstanding > 0 and outstanding() >= max_outstanding).
//   - Some worker meets the bound: the cheapest of them; equal prices go to the lower predicted
//     latency.
//   - None does (or there is no bound, latency_ms = 0): the lowest predicted latency among the
//     unsaturated candidates, or among all candidates when every one is saturated. With no bound
//     and no cap this is least_work with the network round trip added.
// Exact ties are broken round-robin as in LeastWorkRouter. The router's own NIC is the same for
// every worker and is ignored.
// REQUIRES: `cost` outlives the router.
class CostAwareRouter : public Router {
 public:
  struct Options {
    double latency_ms = 0;    // the bound; 0: none. Default: the workload's slo.latency_ms
    double headroom = 0.1;    // fraction of the bound kept free, in [0, 1)
    int max_outstanding = 0;  // requests (waiting + running) that saturate a worker; 0: no cap
  };
  // Reads "latency_ms", "headroom" and "max_outstanding"; latency_ms defaults to slo->latency_ms
  // when `slo` is given. Does not call p.done().
  static Options read_options(JsonParams& p, const SloSpec* slo);

  CostAwareRouter(const CostModel& cost, const Options& options) : cost_(cost), options_(options) {}
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "cost_aware"; }
  ViewUse view_use() const override { return ViewUse::kQueues; }

  TimeUs predicted_latency_us(const Request& request, const WorkerView& worker) const;
  static double price_per_hour(const WorkerView& worker);
  // (1 - headroom) * latency_ms, in microseconds; 0 when there is no bound.
  TimeUs bound_us() const;

 private:
  bool saturated(const WorkerView& worker) const;
  int cheapest_meeting_bound(const Request& request, const ClusterView& view);
  int fastest(const Request& request, const ClusterView& view);

  const CostModel& cost_;
  Options options_;
  int tie_start_ = 0;
  std::vector<int> candidates_;
  std::vector<int> subset_;  // reused buffer
};

}  // namespace twinfer
