// The elastic part of a run, shared by the simulator and the runtime: the pools (the workers that
// serve one model), their autoscalers, the lifecycle of every worker (stopped, starting, ready,
// draining), and what the fleet cost (GPU-hours, money, replica counts over time).
//
// A driver
//   - sets each WorkerView::lifecycle from lifecycle() (initial replicas are ready at time 0);
//   - calls on_routed() for each request's first attempt;
//   - every interval_us() calls decide() and carries out the changes it returns: kStarting: begin a
//     cold start of cold_start_us(w), then call ready(w, epoch) with the epoch returned by
//     start_epoch(w) at that time (a start cancelled meanwhile is then ignored); kDraining: route
//     nothing more to w, and call stopped(w) once it holds no request; kReady: a draining worker
//     resumes; kStopped: a starting worker was cancelled;
//   - calls finish(end_us) once at the end, then summary().
// Without autoscaling every worker is ready from 0 to the end and decide() is never needed; the
// cost accounting works the same, so that static and elastic runs compare on one scale.
//
// With autoscaling, the pool of a model version under a traffic split also follows the split
// (hot swap): let lead = interval + cold start, share = the split's share for the version now, and
// ahead = its largest share over [now, now + lead].
//   - ahead = 0: the version is to get nothing; its pool holds no replica (none at time 0; later it
//     drains to zero), but only once every version with a share now has a ready worker; until
//     then it keeps at least one replica, and the split sends it what the others cannot take.
//   - ahead > share (it gains traffic within a cold start): at least
//     ceil(ahead * others / (1 - share)) replicas, others = the replicas (ready or starting) of the
//     family's other versions, so that it starts ahead of its traffic, sized for it; and at least
//     min_replicas.
//   - otherwise its autoscaler sizes it within [min_replicas, max_replicas].
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/autoscaler.h"
#include "policies/cluster_view.h"
#include "policies/cost_model.h"
#include "policies/elastic/autoscaling_options.h"
#include "serving/recorder.h"
#include "serving/run_config.h"
#include "serving/splits/version_choice.h"

namespace twinfer {

struct LifecycleChange {
  int worker = 0;
  Lifecycle to = Lifecycle::kReady;
};

// Thread safety: none; the driver serializes calls.
class ElasticCluster {
 public:
  // Builds one autoscaler per pool from config.autoscaling (seeded seed + pool index). `recorder`
  // receives the timeline's markers (scale decisions) and counters (replicas per pool); it must
  // outlive this object. Throws twinfer::Error naming the config key on a bad autoscaler or bounds.
  // `versions` (may be null) gives the traffic splits that versioned pools follow; it must outlive
  // this object.
  ElasticCluster(const RunConfig& config, const CostModel& cost, std::uint64_t seed, Recorder& recorder,
                 const VersionChoice* versions = nullptr);
  ~ElasticCluster();

  bool autoscaling() const { return options_.enabled(); }
  TimeUs interval_us() const { return options_.interval_us; }
  Lifecycle lifecycle(int worker) const { return workers_[worker].lifecycle; }
  TimeUs cold_start_us(int worker) const;
  int start_epoch(int worker) const { return workers_[worker].epoch; }

  void on_routed(int worker, const Request& request);
  // One decision round at view.now_us. busy_us[w] is worker w's busy time since the run began.
  std::vector<LifecycleChange> decide(const ClusterView& view, const std::vector<TimeUs>& busy_us);
  // A cold start ended. Returns false (and changes nothing) when `epoch` is stale.
  bool ready(int worker, int epoch, TimeUs now_us);
  // A draining worker holds no request any more.
  void stopped(int worker, TimeUs now_us);
  // Closes the accounting at the end of the run.
  void finish(TimeUs end_us);

  // {"cost": {...}} always, plus {"autoscaling": {...}} when autoscaling. `completed` requests set
  // the cost per million.
  nlohmann::json summary(std::int64_t completed) const;

 private:
  struct Worker {
    int pool = 0;
    Lifecycle lifecycle = Lifecycle::kReady;
    TimeUs paid_since_us = kNever;   // in a paid state (starting, ready, draining) since
    TimeUs ready_since_us = 0;
    TimeUs busy_seen_us = 0;         // busy_us at the previous decision
    double gpu_seconds = 0;
    int epoch = 0;
  };
  struct Pool;

  void set(int worker, Lifecycle to, TimeUs now_us);
  PoolSample sample(Pool& pool, const ClusterView& view, const std::vector<TimeUs>& busy_us);
  void resize(Pool& pool, int desired, TimeUs now_us, const ClusterView& view, std::vector<LifecycleChange>& out);
  void record_pool(Pool& pool, TimeUs now_us);
  int count(const Pool& pool, Lifecycle l) const;
  // The replica bounds that the traffic split sets on `pool` now (see above); {min_replicas, max}
  // for a pool no split governs. `reason` gets a note when the split raised the floor.
  std::pair<int, int> split_bounds(const Pool& pool, TimeUs now_us, std::string& reason) const;
  TimeUs lead_us(const Pool& pool) const;

  AutoscalingOptions options_;
  const ClusterConfig& cluster_;
  Recorder& recorder_;
  const VersionChoice* versions_;
  std::vector<Worker> workers_;
  std::vector<std::unique_ptr<Pool>> pools_;
  TimeUs last_decision_us_ = 0;
  TimeUs end_us_ = kNever;
};

}  // namespace twinfer
