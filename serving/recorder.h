// Records how every request of a run went and turns it into the run's outputs: summary.json,
// requests.csv and timeline.json. The simulator and the runtime write the same files through it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/batcher.h"
#include "policies/cost_model.h"
#include "core/percentile.h"
#include "core/request.h"
#include "core/slo.h"
#include "core/time.h"

namespace twinfer {

struct Sequence;
class WorkerState;

// One row of requests.csv. Times are absolute run times in microseconds; -1 when it never happened.
struct RequestRecord {
  RequestId id = 0;
  TimeUs arrival_us = 0;
  std::int32_t input_tokens = 0;
  std::int32_t output_tokens = 0;
  int priority = 0;
  TimeUs deadline_us = kNever;
  int worker = -1;
  TimeUs start_us = -1;
  TimeUs first_token_us = -1;
  TimeUs end_us = -1;
  int preemptions = 0;
  int attempts = 0;  // times it was sent to a worker (1 + retries)
  std::int32_t cached_tokens = -1;  // prompt tokens found in the prefix cache when it started; -1: never started
  bool ended = false;
  Outcome outcome = Outcome::kCompleted;
  std::string reason;
};

// One batch or iteration on one worker, for timeline.json and per-worker statistics.
struct BatchRecord {
  int worker = 0;
  TimeUs start_us = 0;
  TimeUs end_us = 0;
  std::int32_t size = 0;            // sequences in the batch
  std::int64_t prefill_tokens = 0;
  std::int32_t decode_seqs = 0;
  std::int32_t iterations = 1;      // back-to-back decode-only iterations of one size merged in the timeline
  std::int64_t cached_tokens = 0;   // prompt tokens the sequences that started in it found in the prefix cache
  // The step's shape as the cost model sees it (steps.csv): an iteration's, or a request batch's.
  bool request_batch = false;
  // The worker's own time (scheduling, bookkeeping) between its previous step's end and this
  // step's start, when it did not wait for work in between; 0 otherwise and in the simulator,
  // whose cost model charges it inside the step.
  TimeUs engine_us = 0;
  IterationShape iteration;
  RequestBatchShape batch;

  // The record of `plan` run by `worker` from start_us to end_us. `state` is the worker's before
  // the plan's results are applied (WorkerState::finish), as the cost model saw it; the shape only
  // when `shape` (someone logs steps).
  static BatchRecord of(int worker, const BatchPlan& plan, const WorkerState& state, TimeUs start_us, TimeUs end_us,
                        bool shape = true);
  // The record of a step that decodes `seqs` sequences over `context_tokens` of context (their
  // tokens in the cache, plus one each), as of() gives for it; the shape only when `shape`.
  static BatchRecord decode_step(int worker, std::int64_t seqs, std::int64_t context_tokens, TimeUs start_us,
                                 TimeUs end_us, bool shape);
};

// Thread safety: none; the driver serializes calls.
class Recorder {
 public:
  // `requests` are the run's requests with ids 0..n-1, read (not copied) until the recorder is
  // destroyed; `workers` names the workers by index. `keep_batches`: keep the batches for
  // timeline.json; `keep_steps`: keep every step, unmerged, for steps.csv.
  Recorder(const std::vector<Request>& requests, std::vector<std::string> workers, SloSpec slo,
           bool keep_batches = true, bool keep_steps = false);

  // Each request ends exactly once through one of these; a second end is a programming error.
  void reject(RequestId id, TimeUs now_us, const std::string& reason);
  // Each attempt to serve the request (the first and every retry) is routed to a worker.
  void routed(RequestId id, int worker);
  // Ends a request that is on no worker any more: dropped (its worker failed and it was not
  // retried), timed out, or lost with the router. Keeps the worker of its last attempt.
  void lost(RequestId id, Outcome outcome, const std::string& reason, TimeUs now_us);
  bool ended(RequestId id) const { return progress_[id].ended; }
  // An instant event in the timeline (a fault, a health change) on `worker`'s track, or on the
  // router's track when worker < 0.
  void marker(TimeUs at_us, int worker, const std::string& name, const std::string& detail);
  // A counter sample in the timeline (a "C" event: one track per name, one series per key), e.g.
  // the replicas of a pool.
  void counter(TimeUs at_us, const std::string& name, const std::vector<std::pair<std::string, double>>& values);
  // A sequence left `worker` completed (end_us = when its response reached the client) or dropped.
  void finished(const Sequence& seq, int worker, Outcome outcome, const std::string& reason, TimeUs first_token_us,
                TimeUs end_us);
  // A batch ran. The timeline merges a decode-only iteration into the worker's previous slice when
  // that one is decode-only too, of the same size, and ends where this one starts.
  void batch(const BatchRecord& b);
  // `steps` back-to-back decode steps of `seqs` sequences, from start_us, step k ending at
  // ends[k], with context_tokens (BatchRecord::decode_step) before the first: the same as batch()
  // of each, in constant time when neither the timeline nor steps.csv is kept.
  void decode_steps(int worker, std::int64_t seqs, std::int64_t context_tokens, TimeUs start_us, const TimeUs* ends,
                    std::size_t steps);

  // The rows of requests.csv, built on demand: the recorder keeps only what the run added to each
  // request (a tenth of a million-request trace's memory went to copies of its fields).
  std::vector<RequestRecord> records() const;
  RequestRecord record(RequestId id) const;
  const std::vector<std::string>& worker_names() const { return workers_; }
  std::int64_t batches() const { return batch_count_; }
  // Throws twinfer::Error listing requests that never ended.
  void check_all_ended() const;

  // The summary object; `run` is merged in as the "sim" (or "run") section by the caller.
  nlohmann::json summary() const;
  // The request figures of summary() (requests, reasons, latencies, throughput, SLO attainment) for
  // each group of workers: group_of_worker[w] names worker w's group (e.g. its model version).
  // Requests that never reached a worker belong to no group.
  nlohmann::json summary_by(const std::vector<std::string>& group_of_worker) const;

  void write_requests_csv(const std::string& path) const;
  void write_timeline_json(const std::string& path) const;
  // One row per step (see docs in configs/README.md, "steps.csv"). REQUIRES: keeps_steps().
  void write_steps_csv(const std::string& path) const;
  bool keeps_steps() const { return keep_steps_; }

 private:
  // What the run added to one request (RequestRecord less the request's own fields): 48 bytes.
  struct Progress {
    TimeUs start_us = -1;
    TimeUs first_token_us = -1;
    TimeUs end_us = -1;
    std::int32_t worker = -1;
    std::uint32_t reason = 0;  // index in reasons_; 0 is none
    std::int32_t preemptions = 0;
    std::int32_t cached_tokens = -1;
    std::int32_t block_tokens = 0;
    std::uint16_t attempts = 0;
    bool ended = false;
    Outcome outcome = Outcome::kCompleted;
  };
  static_assert(sizeof(Progress) <= 48, "one Progress per request of a trace: keep it small");

  Progress& end(RequestId id, Outcome outcome, const std::string& reason, TimeUs now_us);
  bool meets_slo(const Request& q, const Progress& p) const;
  nlohmann::json request_stats(const std::function<bool(const Progress&)>& selected) const;

  const std::vector<Request>* requests_;
  std::vector<Progress> progress_;
  std::vector<std::string> reasons_{""};  // each distinct reason once
  std::unordered_map<std::string, std::uint32_t> reason_index_;
  std::vector<std::string> workers_;
  SloSpec slo_;
  bool keep_batches_;
  bool keep_steps_;
  std::vector<BatchRecord> batches_;
  std::vector<BatchRecord> steps_;
  struct Marker {
    TimeUs at_us;
    int worker;
    std::string name;
    std::string detail;
  };
  std::vector<Marker> markers_;
  struct Counter {
    TimeUs at_us;
    std::string name;
    std::vector<std::pair<std::string, double>> values;
  };
  std::vector<Counter> counters_;
  std::vector<std::int64_t> last_batch_;  // per worker: index in batches_ of its latest slice, or -1
  std::int64_t batch_count_ = 0;
  struct WorkerTotals {
    TimeUs busy_us = 0;
    std::int64_t batches = 0;
    std::int64_t sequences = 0;
    std::int64_t preemptions = 0;
    std::int64_t completed = 0;
    std::int64_t prompt_tokens = 0;  // of the sequences that started here
    std::int64_t cached_tokens = 0;
    std::int64_t prompt_blocks = 0;  // of those with a block size
    std::int64_t cached_blocks = 0;
    std::int64_t host_cached_tokens = 0;  // of cached_tokens, those loaded from the host tier
  };
  std::vector<WorkerTotals> totals_;
};

// Creates `dir` and its parents if needed. Throws twinfer::Error naming the folder.
void make_output_dir(const std::string& dir);

// Writes a run's files into `dir` (created if needed): summary.json (`summary` as given),
// requests.csv, timeline.json if `timeline`, and steps.csv if the recorder keeps steps.
void write_run_outputs(const Recorder& recorder, const nlohmann::json& summary, const std::string& dir,
                       bool timeline);

}  // namespace twinfer
