// Priority load shedding: under load, rejects low-priority requests first.
#pragma once

#include <string>
#include <vector>

#include "policies/admission.h"
#include "core/params.h"

namespace twinfer {

// A load signal is measured over the eligible workers of a request (not down, serving its model):
//   kQueuePerWorker:  mean waiting requests per worker;
//   kWorkMsPerWorker: mean outstanding_work_us / 1000 per worker.
// A request of priority p (below 0 counts as 0) is shed when signal > levels[min(p, levels.size()-1)],
// so with ascending levels higher priorities are shed only under more load. A request no worker can
// take is admitted: the router rejects it with the precise reason.
class PriorityShedAdmission : public Admission {
 public:
  enum class Signal { kQueuePerWorker, kWorkMsPerWorker };
  struct Options {
    Signal signal = Signal::kQueuePerWorker;
    std::vector<double> levels = {32, 64, 128};  // non-empty, ascending, >= 0
  };
  // Reads "signal" ("queue_per_worker" | "work_ms_per_worker") and "levels" (default [32, 64, 128]
  // for queue_per_worker, [1000, 2000, 4000] for work_ms_per_worker). Does not call p.done().
  static Options read_options(JsonParams& p);

  explicit PriorityShedAdmission(Options options);
  AdmissionDecision admit(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "priority_shed"; }
  ViewUse view_use() const override { return ViewUse::kQueues; }

  // The signal for `request`; a negative value when no worker is eligible.
  double signal(const Request& request, const ClusterView& view) const;
  static const char* signal_name(Signal signal);

 private:
  Options options_;
};

}  // namespace twinfer
