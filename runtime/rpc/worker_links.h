// The router process's side of its workers: one gRPC channel each, their latest polled state, the
// requests forwarded and not yet answered, and their health (WorkerHealth: polled State answers
// are heartbeats, forward outcomes feed the circuit breakers). Feeds the ClusterView that the
// router's policies decide on. State polls travel on a connection of their own, so that a burst
// of forwarded requests never delays a heartbeat; an answered request counts as one too.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "policies/cluster_view.h"
#include "policies/kv_events.h"
#include "serving/health/worker_health.h"
#include "runtime/rpc/transport_security.h"
#include "runtime/rpc/twinfer.grpc.pb.h"

namespace twinfer::runtime {

struct LinkOptions {
  int poll_interval_ms = 5;     // State of every worker, this often
  int state_timeout_ms = 2000;  // deadline of one State call (a missing answer is a missed heartbeat)
  int connect_timeout_ms = 10000;  // start(): how long to wait for every worker's first answer
  bool log = true;              // report health changes on stderr
  HealthOptions health;         // heartbeats (from State answers) and circuit breakers
  TransportSecurity security;   // TLS to the workers (ca_file) and the token every call carries
};

// What /metrics and Health report of one worker.
struct LinkStatus {
  int index = 0;
  std::string name;
  std::string address;
  Health health = Health::kUp;
  bool up = true;             // health != kDown
  int in_flight = 0;
  std::int64_t failures = 0;  // times its health went down
  std::int64_t forwards_failed = 0;
  std::string last_error;
  WorkerView view;  // as the policies see it
};

// Thread safety: every method may be called from any thread.
class WorkerLinks {
 public:
  // `instances[i]` is the instance served at `addresses[i]`; both outlive this object.
  WorkerLinks(std::vector<std::string> addresses, std::vector<const InstanceSpec*> instances, LinkOptions options);
  ~WorkerLinks();  // stop()

  // Waits up to connect_timeout_ms for every monitored worker's first State (those that do not
  // answer miss heartbeats from then on), then polls in the background.
  void start();
  void stop();

  std::size_t size() const { return links_.size(); }
  rpc::Worker::Stub& stub(int worker) { return *links_[worker]->stub; }
  // Adds what every call to a worker carries (the token).
  void authorize(grpc::ClientContext& context) const { runtime::authorize(context, options_.security); }

  // The views the policies decide on, health included (a worker whose breaker is half-open with
  // probe room is shown up, so that routers send it the probes that may close the breaker). Load
  // combines the latest poll with the router's own count of requests in flight, which moves at once.
  std::vector<WorkerView> views() const;
  // From now on State polls bring each worker's KV events (on), or not; either way every worker's
  // events are read from the start again (its whole cache first).
  void follow_kv_events(bool on);
  // While following them (follow_kv_events(true)): appends worker w's KV events that State polls
  // brought since the last call to `out`, in order.
  void take_kv_events(int worker, std::vector<KvEvent>& out);

  // A request of predicted `work_us` was forwarded to `worker` on `call`. While it is pending the
  // call is cancelled if the worker's heartbeats stop (failed() then returns why).
  void forwarded(int worker, TimeUs work_us, std::shared_ptr<grpc::ClientContext> call);
  // The worker answered `call` after `latency_us`.
  void succeeded(int worker, const grpc::ClientContext* call, TimeUs latency_us);
  // `call` failed with `status`: feeds the worker's health (connection refused or reset marks it
  // down at once) and returns the reason to report, "worker W unreachable: <why>".
  std::string failed(int worker, const grpc::ClientContext* call, const grpc::Status& status);
  // `call` was answered by a worker that failed (InferResult.worker_failure: `failure`): marks it
  // down at once, as a refused connection does.
  void worker_failed(int worker, const grpc::ClientContext* call, const std::string& failure);
  // The router cancelled `call` itself (the request timed out, the router restarted): no news of
  // the worker's health.
  void abandoned(int worker, const grpc::ClientContext* call);

  // Asks every worker for its batches matching `query`, appending them to `list` (and one error per
  // worker that failed to answer within timeout_ms), then calls done(). `list` must stay valid
  // until then.
  void gather_batches(const rpc::BatchQuery& query, rpc::BatchList* list, int timeout_ms, std::function<void()> done);

  // Forgets what the heartbeats and breakers learned (a restarted router starts afresh).
  void reset_health();

  // Elastic pools: a worker that is not running (stopped, or its process starting) is not
  // monitored: its missing answers are no missed heartbeats. It is still polled, so that
  // answered_us() tells when a started process answered. Every worker is monitored at first.
  void set_monitored(int worker, bool monitored);
  // When `worker` last answered a State poll; kNever if it has not since set_monitored(w, false).
  TimeUs answered_us(int worker) const;
  // Per worker: the summed durations of its batches, as its State answers report them (a restarted
  // process counts from zero again; this sum goes on).
  std::vector<TimeUs> busy_us() const;

  std::vector<LinkStatus> status() const;

 private:
  struct Link {
    std::string address;
    const InstanceSpec* instance = nullptr;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<rpc::Worker::Stub> stub;            // forwarded requests, Batches
    std::unique_ptr<rpc::Worker::Stub> heartbeat_stub;  // State polls, on a connection of their own
    // Guarded by WorkerLinks::mu_.
    rpc::WorkerState polled;
    std::int64_t failures = 0;
    std::int64_t forwards_failed = 0;
    std::string last_error;
    int in_flight = 0;
    struct Call {
      std::shared_ptr<grpc::ClientContext> context;
      std::string cancelled_because;  // set when the links cancelled it
    };
    std::unordered_map<const grpc::ClientContext*, Call> calls;
    TimeUs work_sent_us = 0;          // all forwarded work, ever
    TimeUs work_sent_at_poll_us = 0;  // of it, what the latest poll's answer already counts
    bool polling = false;
    bool monitored = true;
    TimeUs answered_us = kNever;
    TimeUs busy_reported_us = 0;  // by the latest answer
    TimeUs busy_us = 0;
    std::string failure;  // as the latest State answer reported it
    bool poll_failed = false;  // the latest State poll failed
    KvEventCursor kv_cursor;        // how far the polls read the worker's KV events (when kv_events_)
    std::vector<KvEvent> kv_events;  // brought by polls, not yet taken
  };

  void poll_loop();
  void take_beats();
  // REQUIRES: mu_ not held (it takes mu_ to hand the call to take_beats()).
  void poll(int worker, TimeUs work_sent_us);
  void polled(int worker, const grpc::Status& status, const rpc::StateQuery& query, const rpc::WorkerState& state,
              TimeUs work_sent_us);
  // Logs the health transitions since the last call and returns the calls in flight on workers
  // whose heartbeats stopped, for the caller to cancel once it released mu_ (cancelling may run
  // their callbacks in the calling thread). REQUIRES: mu_ held.
  std::vector<std::shared_ptr<grpc::ClientContext>> refresh_health(TimeUs now);
  void forget(Link& link, const grpc::ClientContext* call);

  LinkOptions options_;
  bool kv_events_ = false;  // guarded by mu_: State polls bring the workers' KV events (follow_kv_events)
  std::vector<std::unique_ptr<Link>> links_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  WorkerHealth health_;            // guarded by mu_
  std::size_t changes_seen_ = 0;   // of health_.changes(), guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  int polls_pending_ = 0;  // guarded by mu_
  std::thread poller_;
  grpc::CompletionQueue beat_cq_;  // State answers
  bool beat_cq_shut_ = false;      // guarded by mu_
  std::thread beats_;              // takes them (take_beats)
};

// Channel arguments for links that must come back quickly after their peer restarts: reconnect
// backoff of 100 ms to 1 s instead of gRPC's 1 s to 120 s.
grpc::ChannelArguments fast_reconnect_channel_args();

}  // namespace twinfer::runtime
