#include "policies/admission/priority_shed_admission.h"

#include <algorithm>
#include <cassert>

#include "core/params.h"
#include "policies/router.h"

namespace twinfer {

const char* PriorityShedAdmission::signal_name(Signal signal) {
  return signal == Signal::kQueuePerWorker ? "queue_per_worker" : "work_ms_per_worker";
}

PriorityShedAdmission::Options PriorityShedAdmission::read_options(JsonParams& p) {
  Options o;
  std::string signal = signal_name(o.signal);
  p.get("signal", signal);
  p.require(signal == "queue_per_worker" || signal == "work_ms_per_worker", "signal",
            "must be \"queue_per_worker\" or \"work_ms_per_worker\", got \"" + signal + "\"");
  o.signal = signal == "queue_per_worker" ? Signal::kQueuePerWorker : Signal::kWorkMsPerWorker;
  if (o.signal == Signal::kWorkMsPerWorker) o.levels = {1000, 2000, 4000};
  p.get("levels", o.levels);
  p.require(!o.levels.empty(), "levels", "must hold at least one threshold");
  for (std::size_t i = 0; i < o.levels.size(); ++i) {
    p.require(o.levels[i] >= 0, "levels", "thresholds must be >= 0");
    p.require(i == 0 || o.levels[i] >= o.levels[i - 1], "levels", "thresholds must be ascending");
  }
  return o;
}

PriorityShedAdmission::PriorityShedAdmission(Options options) : options_(std::move(options)) {
  assert(!options_.levels.empty());
}

double PriorityShedAdmission::signal(const Request& request, const ClusterView& view) const {
  double sum = 0;
  int workers = 0;
  for (const WorkerView& w : view.all()) {
    if (!eligible(w, request)) continue;
    ++workers;
    sum += options_.signal == Signal::kQueuePerWorker ? static_cast<double>(w.waiting)
                                                      : static_cast<double>(w.outstanding_work_us) / 1000.0;
  }
  return workers == 0 ? -1.0 : sum / workers;
}

AdmissionDecision PriorityShedAdmission::admit(const Request& request, const ClusterView& view) {
  const double load = signal(request, view);
  const int priority = std::max(request.priority, 0);
  const std::size_t level = std::min(static_cast<std::size_t>(priority), options_.levels.size() - 1);
  const double threshold = options_.levels[level];
  if (load <= threshold) return AdmissionDecision::admit();
  return AdmissionDecision::reject(std::string("shed: ") + signal_name(options_.signal) + " " + format_number(load) +
                                   " > " + format_number(threshold) + " (priority " + std::to_string(request.priority) +
                                   ")");
}

}  // namespace twinfer
