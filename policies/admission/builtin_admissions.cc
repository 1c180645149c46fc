// The built-in admission policies and the process-wide admission registry.
#include <memory>

#include "policies/admission/accept_all_admission.h"
#include "policies/admission/deadline_admission.h"
#include "policies/admission/priority_shed_admission.h"
#include "policies/admission/queue_bound_admission.h"
#include "policies/admission/token_bucket_admission.h"
#include "policies/registry.h"

namespace twinfer {
namespace {

std::unique_ptr<Admission> make_accept_all(JsonParams& p, const PolicyContext&) {
  p.done();
  return std::make_unique<AcceptAllAdmission>();
}

std::unique_ptr<Admission> make_token_bucket(JsonParams& p, const PolicyContext&) {
  auto opts = TokenBucketAdmission::read_options(p);
  p.done();
  return std::make_unique<TokenBucketAdmission>(opts);
}

std::unique_ptr<Admission> make_queue_bound(JsonParams& p, const PolicyContext&) {
  auto opts = QueueBoundAdmission::read_options(p);
  p.done();
  return std::make_unique<QueueBoundAdmission>(opts);
}

std::unique_ptr<Admission> make_deadline(JsonParams& p, const PolicyContext& ctx) {
  auto opts = DeadlineAdmission::read_options(p);
  p.done();
  return std::make_unique<DeadlineAdmission>(opts, ctx.cost);
}

std::unique_ptr<Admission> make_priority_shed(JsonParams& p, const PolicyContext&) {
  auto opts = PriorityShedAdmission::read_options(p);
  p.done();
  return std::make_unique<PriorityShedAdmission>(std::move(opts));
}

void register_builtin_admissions(PolicyRegistry<Admission>& r) {
  r.add("accept_all", make_accept_all);
  r.add("token_bucket", make_token_bucket);
  r.add("queue_bound", make_queue_bound);
  r.add("deadline", make_deadline);
  r.add("priority_shed", make_priority_shed);
}

}  // namespace

PolicyRegistry<Admission>& admission_registry() {
  static PolicyRegistry<Admission>& registry = builtin_registry<Admission>("admission", register_builtin_admissions);
  return registry;
}

}  // namespace twinfer
