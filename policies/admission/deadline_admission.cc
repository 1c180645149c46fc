#include "policies/admission/deadline_admission.h"

#include <algorithm>

#include "policies/router.h"

namespace twinfer {

DeadlineAdmission::Options DeadlineAdmission::read_options(JsonParams& p) {
  Options opts;
  p.get("predictive", opts.predictive);
  p.get("default_deadline_ms", opts.default_deadline_ms);
  p.require(opts.default_deadline_ms >= 0, "default_deadline_ms", "must be >= 0 (0: none)");
  return opts;
}

DeadlineAdmission::DeadlineAdmission(const Options& options, const CostModel* cost)
    : options_(options), default_deadline_us_(us_from_ms(options.default_deadline_ms)), cost_(cost) {}

TimeUs DeadlineAdmission::effective_deadline_us(const Request& request) const {
  if (request.deadline_us != kNever) return request.deadline_us;
  if (default_deadline_us_ > 0) return request.arrival_us + default_deadline_us_;
  return kNever;
}

TimeUs DeadlineAdmission::fastest_work_us(const Request& request, const ClusterView& view) const {
  TimeUs best = kNever;
  if (cost_ == nullptr) return best;
  for (const WorkerView& w : view.all()) {
    if (!eligible(w, request)) continue;
    best = std::min(best, request_work_us(*cost_, *w.instance, request.input_tokens, request.output_tokens));
  }
  return best;
}

AdmissionDecision DeadlineAdmission::admit(const Request& request, const ClusterView& view) {
  TimeUs deadline_us = effective_deadline_us(request);
  if (deadline_us == kNever) return AdmissionDecision::admit();
  if (view.now_us >= deadline_us) return AdmissionDecision::reject("deadline passed before admission");
  if (!options_.predictive) return AdmissionDecision::admit();
  TimeUs work_us = fastest_work_us(request, view);
  // kNever work (no cost model, or no worker for the model: the router says why) cannot be judged.
  if (work_us != kNever && view.now_us + work_us > deadline_us) {
    return AdmissionDecision::reject("deadline cannot be met: predicted completion at " +
                                     std::to_string(view.now_us + work_us) + " us, deadline " +
                                     std::to_string(deadline_us) + " us");
  }
  return AdmissionDecision::admit();
}

std::optional<std::string> DeadlineAdmission::drop_before_start(const Request& request, TimeUs now_us) const {
  if (now_us >= effective_deadline_us(request)) return std::string("deadline passed before start");
  return std::nullopt;
}

}  // namespace twinfer
