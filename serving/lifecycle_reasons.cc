#include "serving/lifecycle_reasons.h"

#include "core/params.h"

namespace twinfer::reasons {

std::string worker_crashed(const std::string& worker) { return "worker " + worker + " crashed"; }

std::string worker_failed(const std::string& worker, const std::string& what) {
  return "worker " + worker + " failed: " + what;
}

std::string worker_unreachable(const std::string& worker, const std::string& why) {
  return "worker " + worker + " unreachable: " + why;
}

std::string no_answer_within(TimeUs timeout_us) {
  return "no answer within " + format_number(ms_from_us(timeout_us)) + " ms";
}

std::string no_worker_to_retry_on(const std::string& route_reason) {
  return "no worker to retry on: " + route_reason;
}

}  // namespace twinfer::reasons
