// The request lifecycle, once for every engine: admission, version choice, routing, sending,
// retries, request timeouts, failing over when a worker crashes or its heartbeats stop, router
// restarts, and ending every request exactly once with its reason.
//
// The Dispatcher knows no SimGrid, thread or RPC. It keeps one Flight per request and takes
// events from its carrier (the simulator, the embedded runtime): a request arrived, a worker
// answered, an attempt failed, a worker crashed or went silent, the router went down or came
// back, a timer fell due. It answers with actions that the carrier carries out through the
// Carrier interface: send attempt k of request R to worker W, cancel R on W, call me back at t.
// Every reason a request ends with, other than its worker's own, is worded here (or in the
// policies it consults: admission, routing, retries).
//
// What it decides, in order:
//   arrive      router down: rejected "router unavailable". Else the request's version is chosen
//               (VersionChoice, read at its arrival time), admission runs (admit_request()), and
//               the router picks a worker; a refusal of either ends it rejected with their reason.
//               Admitted, it counts toward the retry budget, its time limit starts
//               (protection.request_timeout_ms after its arrival) and attempt 1 is sent.
//   answered    the worker of the current attempt answered: the request ends with the worker's
//               outcome and reason. Answers of attempts given up on are stale (answered() says so).
//   attempt_failed / worker_crashed / worker_failed / worker_unreachable
//               the attempt failed; the RetryPolicy retries it after its backoff (routed again,
//               to the same version) or gives up: dropped with the policy's reason. A retry that
//               the router cannot place is dropped "no worker to retry on: <why>".
//   timeout     not ended by its time limit: cancelled on its worker, ended timed_out.
//   router_down every admitted request not ended is cancelled on its worker and ends dropped
//               "router restarted"; arrivals are rejected until router_up.
//
// Thread safety: none. A carrier serializes every call (the simulator is single-threaded; the
// embedded runtime calls it from its router thread only).
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <queue>
#include <string>
#include <string_view>
#include <vector>

#include "policies/admission.h"
#include "policies/cluster_view.h"
#include "serving/elastic/elastic_cluster.h"
#include "serving/health/retry_policy.h"
#include "serving/health/worker_health.h"
#include "serving/protection.h"
#include "serving/recorder.h"
#include "core/request.h"
#include "policies/router.h"
#include "serving/splits/version_choice.h"
#include "core/time.h"

namespace twinfer {

// A call back that the Dispatcher asks its carrier for: pass it to Dispatcher::fire() at at_us
// (or later, when the carrier runs late).
struct DispatchTimer {
  enum Kind { kRetry, kTimeout } kind = kRetry;
  RequestId id = 0;
  TimeUs at_us = 0;
  std::uint32_t generation = 0;  // of the request's slot (online use reuses slots)
};

// How a request ended, as the Dispatcher tells its carrier (after recording it, when it has a
// Recorder).
struct Ending {
  RequestId id = 0;
  int worker = -1;  // of its latest attempt; -1 when it was never sent
  int attempts = 0;
  Outcome outcome = Outcome::kCompleted;
  std::string_view reason;  // valid during Carrier::ended() only
  TimeUs at_us = 0;
};

// What carries the Dispatcher's actions out. The simulator turns send() into a network flow and
// at() into a SimGrid timer; the embedded runtime into a hand-off to a worker thread and an entry
// of its timer heap.
class Carrier {
 public:
  virtual ~Carrier() = default;
  // The workers as the policies see them now (health applied), for routing a retry.
  virtual ClusterView view() = 0;
  // Attempt `attempt` (1, 2, ...) of request `r` (the version chosen for it) goes to `worker`.
  virtual void send(const Request& r, int worker, int attempt) = 0;
  // The router gave up on request `id`'s attempt on `worker` (timed out, router restarted,
  // heartbeats lost): the worker should drop it.
  virtual void cancel(RequestId id, int worker) = 0;
  // Call Dispatcher::fire(timer, now) once the carrier's clock reaches timer.at_us.
  virtual void at(const DispatchTimer& timer) = 0;
  // A request ended (already recorded).
  virtual void ended(const Ending& ending) {}
};

// What a Dispatcher borrows; everything must outlive it. Nullable parts are features a run may
// not have.
struct DispatcherParts {
  // A trace's requests, ids 0..n-1. Null: requests come one by one through open() (a server).
  const std::vector<Request>* requests = nullptr;
  const ProtectionOptions* protection = nullptr;
  Router* router = nullptr;
  Admission* shed = nullptr;
  Admission* admission = nullptr;
  std::vector<std::string> worker_names;  // by worker index, for the reasons
  std::uint64_t seed = 1;                 // the retry policy's jitter
  VersionChoice* versions = nullptr;      // null: requests keep their model
  ElasticCluster* elastic = nullptr;      // null: no elastic pools
  WorkerHealth* health = nullptr;         // null: call outcomes are not tracked
  Recorder* recorder = nullptr;           // null: endings go to the carrier only
  std::mutex* recorder_mu = nullptr;      // held around the recorder's calls, when others share it
};

class Dispatcher {
 public:
  Dispatcher(DispatcherParts parts, Carrier& carrier);

  // Online use (parts.requests null): takes request `r` in and returns its id, a slot that is
  // reused once the request ended (r.id is replaced by it; the carrier keeps the caller's own id).
  // Timers and attempts of a slot's earlier request never touch its new one.
  RequestId open(Request r);
  std::uint32_t generation(RequestId id) const { return flights_[id].generation; }

  // Request `id` arrived at `view.now_us` (its arrival time, or later when the carrier runs late).
  void arrive(RequestId id, const ClusterView& view);

  // The worker of `id`'s current attempt answered at at_us (>= now when a simulated worker runs
  // ahead). Returns false, doing nothing, when the answer is stale: the request ended or that
  // attempt was given up on. `seq` is what the worker reports (may be null for a bare outcome).
  bool answered(RequestId id, int worker, Outcome outcome, const std::string& reason, TimeUs at_us,
                const Sequence* seq, TimeUs first_token_us);

  // Request `id`'s attempt on `worker` failed (`hard`: the connection was refused or reset, which
  // marks the worker down at once). Stale failures are ignored.
  void attempt_failed(RequestId id, int worker, const std::string& failure, bool hard, TimeUs now);
  // `worker` crashed: one hard failure for its health, and every attempt on it or on the way to or
  // from it fails "worker NAME crashed".
  void worker_crashed(int worker, TimeUs now);
  // `worker` failed (WorkerEngine's on_failed: `failure` is reasons::worker_failed()): as a crash,
  // with that failure. The attempts its failed step held ended first, dropped by the worker.
  void worker_failed(int worker, const std::string& failure, TimeUs now);
  // `worker`'s heartbeats stopped: each attempt on it is cancelled there (the carrier delivers the
  // cancel once it can) and fails "worker NAME unreachable: heartbeat lost".
  void heartbeat_lost(int worker, TimeUs now);

  // The client of request `id` (of that generation) gave up: cancelled on its worker, dropped
  // with `reason`. Nothing when it already ended.
  void abandon(RequestId id, std::uint32_t generation, const std::string& reason, TimeUs now);
  void router_down(TimeUs now);
  void router_up();
  bool router_is_down() const { return router_down_; }
  // The router stops: every admitted request not ended is cancelled on its worker and dropped
  // "router shutting down".
  void shut_down(TimeUs now);
  // A restarted router's fresh policies (and a fresh retry budget). REQUIRES: nothing in flight.
  void renew(Router* router, Admission* shed, Admission* admission);

  // A timer the Dispatcher asked for through Carrier::at() fell due.
  void fire(const DispatchTimer& timer, TimeUs now);

  // Whether `id`'s current attempt is on `worker` (sent, not answered, failed or given up on);
  // with attempt > 0, also that it is that attempt.
  bool current_on(RequestId id, int worker, int attempt = 0) const;
  // The number that identifies `id`'s latest attempt among every attempt this Dispatcher sent;
  // current(id, ticket) says whether that attempt is still the one the router waits for.
  std::uint32_t ticket(RequestId id) const { return flights_[id].ticket; }
  bool current(RequestId id, std::uint32_t ticket) const {
    const Flight& f = flights_[id];
    return f.on_worker && !f.ended && f.ticket == ticket;
  }
  bool ended(RequestId id) const { return flights_[id].ended; }
  // Admitted and not ended.
  int in_flight() const { return in_flight_; }
  std::size_t ended_count() const { return ended_count_; }
  // Attempts on `worker` (sent and not yet answered, failed or given up on).
  int attempts_on(int worker) const { return attempts_on_[std::size_t(worker)]; }
  // The earliest retry or time limit still pending at `now` or later; kNever if none. Nothing the
  // Dispatcher does reaches a worker before then, unless a carrier event comes first.
  TimeUs next_timer_us(TimeUs now);

 private:
  // The router's record of one request.
  struct Flight {
    TimeUs sent_us = 0;
    std::int32_t worker = -1;       // of the latest attempt
    std::uint32_t ticket = 0;       // of the latest attempt
    std::uint32_t generation = 0;   // times the slot was reused
    std::uint16_t attempts = 0;
    bool admitted : 1;
    bool on_worker : 1;  // the latest attempt was sent and has not been answered, failed or given up on
    bool ended : 1;
    Flight() : admitted(false), on_worker(false), ended(false) {}
  };
  static_assert(sizeof(Flight) <= 24, "one Flight per request of a trace: keep it small");

  void route(RequestId id, const ClusterView& view);
  void send(RequestId id, const Request& r, int worker, TimeUs now);
  void off_worker(Flight& f);
  void end_all(const char* reason, TimeUs now);
  void fail(RequestId id, const std::string& failure, TimeUs now);
  void cancel_on_worker(RequestId id);
  void end(RequestId id, Outcome outcome, const std::string& reason, TimeUs at_us, const Sequence* seq = nullptr,
           TimeUs first_token_us = -1);
  void record_end(RequestId id, Outcome outcome, const std::string& reason, TimeUs at_us, const Sequence* seq,
                  TimeUs first_token_us);
  void record_routed(RequestId id, int worker);
  std::unique_lock<std::mutex> recorder_lock() const;  // held when the recorder is shared
  // Forgets the retry and time-limit times before `now`, and time limits of ended requests.
  void prune(TimeUs now);

  DispatcherParts parts_;
  Carrier& carrier_;
  std::vector<Request> owned_;  // online use: the requests by slot
  const std::vector<Request>& requests_;
  const ProtectionOptions& protection_;
  RetryPolicy retry_;
  std::vector<Flight> flights_;
  std::vector<RequestId> free_;  // online use: slots whose request ended
  std::uint32_t next_ticket_ = 0;
  std::vector<int> attempts_on_;
  int in_flight_ = 0;
  std::size_t ended_count_ = 0;
  bool router_down_ = false;
  std::priority_queue<TimeUs, std::vector<TimeUs>, std::greater<TimeUs>> retry_times_;
  std::deque<std::pair<TimeUs, RequestId>> timeouts_;  // (when, id), in time order
};

}  // namespace twinfer
