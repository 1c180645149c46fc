// Queue bound: rejects requests when the queues they could join are full.
#pragma once

#include <cstdint>
#include <string>

#include "policies/admission.h"
#include "core/params.h"

namespace twinfer {

// Rejects a request when
//   - max_waiting > 0 and every eligible worker (not down, serves the model) has
//     waiting >= max_waiting, or
//   - max_total_waiting > 0 and the waiting requests of all workers sum to >= max_total_waiting.
// A request no worker can take is admitted: the router rejects it with the precise reason.
class QueueBoundAdmission : public Admission {
 public:
  struct Options {
    int max_waiting = 0;                  // per worker; 0: no per-worker bound
    std::int64_t max_total_waiting = 0;   // over the cluster; 0: no cluster bound
  };
  // Reads "max_waiting" and "max_total_waiting", both >= 0, at least one > 0. Does not call p.done().
  static Options read_options(JsonParams& p);

  explicit QueueBoundAdmission(const Options& options);
  AdmissionDecision admit(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "queue_bound"; }
  ViewUse view_use() const override { return ViewUse::kQueues; }

 private:
  Options options_;
};

}  // namespace twinfer
