// Conversions between the policy types and the messages of runtime/rpc/twinfer.proto, and the
// host-wide clock that the processes of one host share.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "policies/clock.h"
#include "policies/cluster_view.h"
#include "serving/recorder.h"
#include "core/request.h"
#include "policies/worker_state.h"
#include "runtime/rpc/twinfer.pb.h"

namespace twinfer::runtime {

// CLOCK_MONOTONIC microseconds: std::chrono::steady_clock since its epoch. The same in every
// process of one host.
inline TimeUs monotonic_now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The Clock of processes that exchange times: monotonic_now_us().
class MonotonicClock : public Clock {
 public:
  TimeUs now_us() const override { return monotonic_now_us(); }
};

// Request <-> message. Wire times are absolute monotonic times (deadline 0: none, i.e. kNever).
rpc::InferRequest to_wire(const Request& request);
Request from_wire(const rpc::InferRequest& message);

// Bounds on what a request message may hold: far above any model's context, far below what
// would exhaust a worker's memory (a worker makes input_tokens prompt tokens up front).
inline constexpr std::int32_t kMaxWireTokens = 1 << 20;
inline constexpr std::size_t kMaxWireTextBytes = 4096;  // model, session
// Times past this (2^62 us, about 146,000 years) would overflow the router's time arithmetic, and
// INT64_MAX is the clock's "never".
inline constexpr std::int64_t kMaxWireTimeUs = std::int64_t(1) << 62;

// Throws twinfer::Error "InferRequest <id>: <field>: <problem>" unless the message is a request
// a router or worker can serve: token counts in 0..kMaxWireTokens, times in 0..kMaxWireTimeUs, model and
// session at most kMaxWireTextBytes, so that no request can exhaust or corrupt a server.
void check_request(const rpc::InferRequest& message);

// The result of a sequence that left a worker. Times kNever become -1.
rpc::InferResult result_of(const Finished& finished, int worker, TimeUs end_us);
// A request that never reached a worker (rejected), or was lost on the way (dropped).
rpc::InferResult ended_without_worker(RequestId id, Outcome outcome, const std::string& reason, int worker,
                                      TimeUs end_us);

// check_request()'s message, or "" for a request that passes it. Servers answer such a request
// rejected with "bad request: <message>" and go on. Limits that depend on the cluster (KV capacity,
// protection.limits) are checked elsewhere.
std::string malformed_reason(const rpc::InferRequest& message);

rpc::Outcome to_wire(Outcome outcome);
Outcome from_wire(rpc::Outcome outcome);

rpc::WorkerState to_wire(const WorkerView& view, TimeUs now_us);
// Fills the load fields of `view` (not index, instance or health).
void fill_view(const rpc::WorkerState& state, WorkerView& view);

// KV events into a State answer (keys, kinds and the cursor after them), and back: appends the
// answer's events to `out` and moves `cursor` to the answer's. A malformed answer (a kind byte that
// is no kind, keys and kinds of different counts) appends a cleared event and resets `cursor`, so
// that the next answer carries the worker's whole cache.
void set_kv_events(const std::vector<KvEvent>& events, const KvEventCursor& cursor, rpc::WorkerState& state);
void get_kv_events(const rpc::WorkerState& state, KvEventCursor& cursor, std::vector<KvEvent>& out);

rpc::Batch to_wire(const BatchRecord& batch);
BatchRecord from_wire(const rpc::Batch& batch);

// "HOST:PORT" with a port in 0..65535. Throws twinfer::Error naming `what` (e.g. "--listen").
void check_address(const std::string& address, const std::string& what);

}  // namespace twinfer::runtime
