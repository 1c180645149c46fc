// Protection of a serving cluster: worker health, retries, request time limits, request size limits
// and load shedding, configured by the "protection" section of a run config and applied the same
// way by the simulator and the runtime.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "policies/admission.h"
#include "policies/cluster_view.h"
#include "serving/health/retry_policy.h"
#include "serving/health/worker_health.h"
#include "core/request.h"

namespace twinfer {

// 0: no limit, except max_request_bytes, which must be > 0.
struct RequestLimits {
  std::int32_t max_input_tokens = 0;
  std::int32_t max_output_tokens = 0;
  int max_queued_requests = 0;                  // admitted and not yet ended, cluster-wide
  std::int64_t max_request_bytes = 4 << 20;     // a request's size on the wire (the transport checks it)
};

struct ProtectionOptions {
  HealthOptions health;
  RetryOptions retry;
  TimeUs request_timeout_us = 0;                // from arrival; 0: none
  RequestLimits limits;
  nlohmann::json shed = "accept_all";           // an admission spec, built with the admission registry
};

// Parses the "protection" object. `where` is its key path for messages ("protection", or
// "<file>: protection"). Keys (all optional): "heartbeat" {"interval_ms", "suspect_after_misses",
// "down_after_misses"}, "circuit_breaker" {"enabled", "window", "min_calls", "failure_ratio",
// "consecutive_failures", "slow_call_ms", "slow_call_ratio", "open_ms", "half_open_probes"},
// "retry" {"max_attempts", "budget_ratio", "budget_min_retries", "budget_window_s",
// "backoff_base_ms", "backoff_max_ms", "jitter"}, "request_timeout_ms", "limits"
// {"max_input_tokens", "max_output_tokens", "max_queued_requests", "max_request_bytes"}, "shed".
// Throws twinfer::Error naming the key path ("protection.retry.jitter: must be in [0, 1]") on an
// unknown key or a bad value. "shed" is only checked to be a name or an object here; its policy is
// checked when built.
ProtectionOptions parse_protection(const nlohmann::json& j, const std::string& where);

// Why a request of `request_bytes` on the wire is too large, or "" (drivers check it where they
// know the size: the runtime's transport, the simulator's payloads).
std::string oversize_reason(std::int64_t request_bytes, const RequestLimits& limits);

// The checks every request passes before routing, in order: token limits and
// max_queued_requests (queued_requests = requests admitted and not yet ended, cluster-wide), then
// unservable_reason(), then `shed`, then `admission`. The first rejection is returned.
AdmissionDecision admit_request(const Request& r, const ClusterView& view, int queued_requests,
                                const ProtectionOptions& p, Admission& shed, Admission& admission);

}  // namespace twinfer
