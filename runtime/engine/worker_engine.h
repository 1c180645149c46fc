// One worker of the real runtime: a thread that owns a model instance's queue, batcher and
// backend, and carries out the batcher's plans on real kernels, exactly as the simulator's worker
// does on modeled time (same WorkerState bookkeeping, same policies).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "policies/admission.h"
#include "policies/batcher.h"
#include "policies/clock.h"
#include "policies/cluster_view.h"
#include "policies/cost_model.h"
#include "serving/recorder.h"
#include "policies/worker_state.h"
#include "runtime/backend/backend.h"

namespace twinfer::runtime {

// Called from the worker's thread.
struct WorkerCallbacks {
  std::function<void(int worker, const Finished& ended, TimeUs end_us)> on_end;  // completed or dropped
  std::function<void(const BatchRecord& batch)> on_batch;
  // A policy (the batcher, the admission's purge) threw: an error of the run, reported before the
  // worker fails (see on_failed). May be empty.
  std::function<void(int worker, const std::string& error)> on_policy_error;
  // The worker failed: a step failed with an error that no one sequence answers for (a backend's,
  // a policy's). The sequences it was running ended dropped with `reason` first (on_end: they may
  // have caused it, so they are not sent elsewhere); the worker reports itself down and keeps the
  // requests still waiting, and any that arrive later, for crash() to give back to their sender.
  // stop() drops them with `reason` instead. May be empty.
  std::function<void(int worker, const std::string& reason)> on_failed;
};

// Everything a worker borrows; all must outlive it. `admission` and `cost` are only used through
// their const methods, which are safe to call from several threads.
struct WorkerParts {
  int index = 0;
  const InstanceSpec* instance = nullptr;
  std::unique_ptr<Batcher> batcher;
  std::unique_ptr<Backend> backend;
  const Admission* admission = nullptr;
  const CostModel* cost = nullptr;
  const Clock* clock = nullptr;
  int vocab = 1024;  // of the backend's model, for prompt tokens
};

class WorkerEngine {
 public:
  WorkerEngine(WorkerParts parts, WorkerCallbacks callbacks);
  ~WorkerEngine();  // stops the thread (see stop())

  // Starts the worker's thread, pinned to `core` when core >= 0.
  void start(int core = -1);
  // Finishes everything submitted so far, then ends the thread. Idempotent.
  void stop();

  // Thread-safe. The request joins the worker's queue at the next step boundary. A request with
  // the id of one still resident here replaces it (a retry of a request its sender gave up on).
  // On a failed worker it waits for crash() (see WorkerCallbacks::on_failed).
  // REQUIRES: not crashed().
  void submit(const Request& request);

  // The worker dies abruptly: its thread ends after the step in progress (kernels cannot be
  // interrupted) without ending anything, its backend (model, KV cache) is destroyed, and every
  // request it held, waiting, running or not yet taken from its inbox, is returned (queue order,
  // waiting first) without an on_end: the caller decides their fate. view() reports it down from
  // then on. Call from any thread but the worker's; no callback runs after it returns. A second
  // call returns nothing. Recovery is a new WorkerEngine with fresh parts.
  std::vector<Request> crash();
  bool crashed() const { return crashed_.load(); }
  // Why the worker failed (see WorkerCallbacks::on_failed); empty while it has not.
  std::string failure() const;

  // Thread-safe snapshot for routers: queue, running, KV, outstanding work, utilization, latency.
  WorkerView view() const;
  // Thread-safe. With prefix caching, the worker's KV events (blocks cached and evicted) as of its
  // latest published view, after `cursor` (KvEventLog::read); none without.
  bool read_kv_events(KvEventCursor& cursor, std::vector<KvEvent>& out) const;

  // Thread-safe. From the next step on, each step is followed by a pause of (factor - 1) times its
  // measured duration, so that it takes `factor` times as long (a throttled or sick device).
  // 1 is normal speed. REQUIRES: factor >= 1.
  void set_slowdown(double factor);
  // Thread-safe. While on, the worker's next step fails with reasons::kInjectedDeviceError, which
  // fails the worker (a device_error fault; see WorkerCallbacks::on_failed).
  void set_device_error(bool on);

  // Thread-safe. At the next step boundary the request leaves the worker (WorkerState::cancel):
  // its backend KV cache is released and on_end is not called (the caller ends it). A no-op when
  // the request is not on this worker (already ended, never submitted).
  void cancel(RequestId id);

 private:
  // A submission or a cancellation, applied in the order they were sent.
  struct Inbound {
    Request request;
    bool cancel = false;
  };

  void loop();
  void serve();
  void fail(const std::string& reason);
  void take_inbox(TimeUs now);
  void forget(RequestId id);
  void pause_after_step(TimeUs step_us);
  void end(std::vector<Finished>& ended, TimeUs now);
  void run_plan(BatchPlan& plan, TimeUs now);
  void run_iteration(const BatchPlan& plan);
  void run_request_batch(const BatchPlan& plan);
  StepSequence step_for(const BatchEntry& entry) const;
  void publish_view(bool busy, TimeUs now);

  WorkerParts parts_;
  WorkerCallbacks callbacks_;
  WorkerState state_;
  std::unordered_map<RequestId, std::vector<std::int32_t>> tokens_;  // prompt + generated, per sequence
  std::unordered_map<RequestId, TimeUs> work_us_;                     // predicted work, per sequence

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Inbound> inbox_;  // guarded by mu_
  double slowdown_ = 1;         // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  WorkerView view_;             // guarded by mu_
  KvEventLog kv_events_;        // guarded by mu_
  std::vector<KvEvent> recorded_;  // worker thread only: events on their way to kv_events_
  KvTransfers transfers_;          // worker thread only: the copies before a step (reused)
  std::string failure_;         // guarded by mu_
  std::atomic<bool> crashed_{false};
  std::atomic<bool> device_error_{false};
  TimeUs util_updated_us_ = 0;  // worker thread only
  TimeUs last_step_end_us_ = -1;  // worker thread only: -1 after the worker waited for work
  std::thread thread_;
};

}  // namespace twinfer::runtime
