#include "serving/protection.h"

#include "core/error.h"
#include "core/params.h"
#include "policies/servable.h"

namespace twinfer {
namespace {

const nlohmann::json& section(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  return j.contains(key) ? j[key] : kEmpty;
}

RequestLimits read_limits(JsonParams& p) {
  RequestLimits l;
  p.get("max_input_tokens", l.max_input_tokens);
  p.get("max_output_tokens", l.max_output_tokens);
  p.get("max_queued_requests", l.max_queued_requests);
  p.get("max_request_bytes", l.max_request_bytes);
  p.require(l.max_input_tokens >= 0, "max_input_tokens", "must be >= 0 (0: no limit)");
  p.require(l.max_output_tokens >= 0, "max_output_tokens", "must be >= 0 (0: no limit)");
  p.require(l.max_queued_requests >= 0, "max_queued_requests", "must be >= 0 (0: no limit)");
  p.require(l.max_request_bytes > 0, "max_request_bytes", "must be > 0");
  return l;
}

// Parses one sub-object with `read` and rejects its unknown keys.
template <class Options, class Read>
Options parse_section(const nlohmann::json& j, const char* key, const std::string& where, Read read) {
  JsonParams p(section(j, key), where + "." + key, {});
  Options o = read(p);
  p.done();
  return o;
}

std::string limit_reason(const Request& r, int queued_requests, const RequestLimits& l) {
  if (l.max_input_tokens > 0 && r.input_tokens > l.max_input_tokens) {
    return "input of " + std::to_string(r.input_tokens) + " tokens exceeds protection.limits.max_input_tokens " +
           std::to_string(l.max_input_tokens);
  }
  if (l.max_output_tokens > 0 && r.output_tokens > l.max_output_tokens) {
    return "output of " + std::to_string(r.output_tokens) +
           " tokens exceeds protection.limits.max_output_tokens " + std::to_string(l.max_output_tokens);
  }
  if (l.max_queued_requests > 0 && queued_requests >= l.max_queued_requests) {
    return "queue full: " + std::to_string(queued_requests) +
           " requests queued (protection.limits.max_queued_requests = " + std::to_string(l.max_queued_requests) +
           ")";
  }
  return {};
}

}  // namespace

ProtectionOptions parse_protection(const nlohmann::json& j, const std::string& where) {
  ProtectionOptions o;
  JsonParams p(j, where, {"heartbeat", "circuit_breaker", "retry", "limits", "shed"});
  double timeout_ms = 0;
  p.get("request_timeout_ms", timeout_ms);
  p.done();
  p.require(timeout_ms >= 0, "request_timeout_ms", "must be >= 0 (0: none)");
  o.request_timeout_us = us_from_ms(timeout_ms);
  o.health.heartbeat = parse_section<HeartbeatOptions>(j, "heartbeat", where, read_heartbeat_options);
  o.health.breaker = parse_section<CircuitBreakerOptions>(j, "circuit_breaker", where, read_circuit_breaker_options);
  o.retry = parse_section<RetryOptions>(j, "retry", where, read_retry_options);
  o.limits = parse_section<RequestLimits>(j, "limits", where, read_limits);
  if (j.contains("shed")) {
    o.shed = j["shed"];
    p.require(o.shed.is_string() || o.shed.is_object(), "shed",
              "expected an admission name or an object with \"name\", got " + o.shed.dump());
  }
  return o;
}

std::string oversize_reason(std::int64_t request_bytes, const RequestLimits& limits) {
  if (request_bytes <= limits.max_request_bytes) return {};
  return "request of " + std::to_string(request_bytes) + " bytes exceeds protection.limits.max_request_bytes " +
         std::to_string(limits.max_request_bytes);
}

namespace {

// A refusal always says why: one without a reason is named after its policy.
AdmissionDecision admitted_by(Admission& policy, const Request& r, const ClusterView& view) {
  AdmissionDecision d = policy.admit(r, view);
  if (!d.admitted && d.reason.empty()) d.reason = "rejected by admission " + policy.name();
  return d;
}

}  // namespace

AdmissionDecision admit_request(const Request& r, const ClusterView& view, int queued_requests,
                                const ProtectionOptions& p, Admission& shed, Admission& admission) {
  std::string why = limit_reason(r, queued_requests, p.limits);
  if (!why.empty()) return AdmissionDecision::reject(std::move(why));
  why = unservable_reason(r, view);
  if (!why.empty()) return AdmissionDecision::reject(std::move(why));
  AdmissionDecision d = admitted_by(shed, r, view);
  if (!d.admitted) return d;
  return admitted_by(admission, r, view);
}

}  // namespace twinfer
