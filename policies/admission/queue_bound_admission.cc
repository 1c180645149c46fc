#include "policies/admission/queue_bound_admission.h"

#include <cassert>

#include "policies/router.h"

namespace twinfer {

QueueBoundAdmission::Options QueueBoundAdmission::read_options(JsonParams& p) {
  Options opts;
  p.get("max_waiting", opts.max_waiting);
  p.get("max_total_waiting", opts.max_total_waiting);
  p.require(opts.max_waiting >= 0, "max_waiting", "must be >= 0");
  p.require(opts.max_total_waiting >= 0, "max_total_waiting", "must be >= 0");
  p.require(opts.max_waiting > 0 || opts.max_total_waiting > 0, "max_waiting",
            "queue_bound needs max_waiting or max_total_waiting > 0");
  return opts;
}

QueueBoundAdmission::QueueBoundAdmission(const Options& options) : options_(options) {
  assert(options_.max_waiting > 0 || options_.max_total_waiting > 0);
}

AdmissionDecision QueueBoundAdmission::admit(const Request& request, const ClusterView& view) {
  if (options_.max_total_waiting > 0) {
    std::int64_t total = 0;
    for (const WorkerView& w : view.all()) total += w.waiting;
    if (total >= options_.max_total_waiting) {
      return AdmissionDecision::reject("queue full: " + std::to_string(total) +
                                       " requests waiting in the cluster (max_total_waiting = " +
                                       std::to_string(options_.max_total_waiting) + ")");
    }
  }
  if (options_.max_waiting > 0) {
    bool any_eligible = false;
    for (const WorkerView& w : view.all()) {
      if (!eligible(w, request)) continue;
      if (w.waiting < options_.max_waiting) return AdmissionDecision::admit();
      any_eligible = true;
    }
    if (any_eligible) {
      return AdmissionDecision::reject("queue full: every worker has " + std::to_string(options_.max_waiting) +
                                       " or more requests waiting (max_waiting = " +
                                       std::to_string(options_.max_waiting) + ")");
    }
  }
  return AdmissionDecision::admit();
}

}  // namespace twinfer
