// The reasons a request's lifecycle gives when it ends other than by its worker's answer, worded
// once for the simulator, the embedded runtime and the gRPC router, so that a simulated and a real
// run of the same scenario end each request with the same words. Workers are named by their
// instance's name ("cpu/cpu1"), as in requests.csv.
#pragma once

#include <string>

#include "core/time.h"

namespace twinfer::reasons {

inline constexpr const char* kRouterRestarted = "router restarted";    // in flight at a router restart
inline constexpr const char* kRouterUnavailable = "router unavailable";  // arrived while it was down
inline constexpr const char* kRouterShuttingDown = "router shutting down";  // in flight when it stopped
inline constexpr const char* kClientCancelled = "client cancelled the call";
inline constexpr const char* kHeartbeatLost = "heartbeat lost";
inline constexpr const char* kConnectionRefused = "connection refused";
inline constexpr const char* kInjectedDeviceError = "device error (injected)";  // a device_error fault

// "worker cpu/cpu1 crashed"
std::string worker_crashed(const std::string& worker);
// "worker cpu/cpu1 failed: <what>": a step failed with an error no one sequence answers for
std::string worker_failed(const std::string& worker, const std::string& what);
// "worker cpu/cpu1 unreachable: heartbeat lost"
std::string worker_unreachable(const std::string& worker, const std::string& why);
// "no answer within 2000 ms" (milliseconds as few digits as they need: "2.5")
std::string no_answer_within(TimeUs timeout_us);
// A failed attempt's retry that the router could not place: "no worker to retry on: <why>".
std::string no_worker_to_retry_on(const std::string& route_reason);

}  // namespace twinfer::reasons
