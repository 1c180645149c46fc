// The read-only picture of the cluster that policies decide on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/cluster_config.h"
#include "core/request.h"
#include "core/time.h"

namespace twinfer {

enum class Health { kUp, kSuspect, kDown };

// Where a worker is in its life (autoscaling): stopped (never started, or scaled down), starting
// (cold start: loading its model), ready, draining (finishing its queue before it stops). Only
// ready workers take new requests. Without autoscaling every worker is ready throughout.
enum class Lifecycle { kStopped, kStarting, kReady, kDraining };

// One worker (model instance) as the drivers see it at `ClusterView::now_us`.
// The driver keeps these up to date; policies only read them.
struct WorkerView {
  int index = 0;                       // position in ClusterView::workers
  const InstanceSpec* instance = nullptr;  // device profile, model, tensor parallelism
  Health health = Health::kUp;
  Lifecycle lifecycle = Lifecycle::kReady;
  TimeUs ready_since_us = -1;          // when a cold start made it ready (autoscaling); -1: ready from the start
  int waiting = 0;                     // requests queued, not yet running
  int running = 0;                     // sequences in the running batch(es)
  std::int64_t kv_blocks_total = 0;    // paged KV cache size in blocks (0 if not an LLM batcher)
  std::int64_t kv_blocks_free = 0;
  std::int32_t kv_block_tokens = 0;    // tokens per KV block; 0: KV not tracked (no KV checks)
  TimeUs outstanding_work_us = 0;      // predicted work of everything queued or running here
  double utilization_ewma = 0;         // busy fraction, smoothed, in [0, 1]
  double latency_ewma_us = 0;          // end-to-end latency of recent completions, smoothed
  // Prefix caching, counted since the worker started (WorkerState::prefix_stats): prompt tokens its
  // sequences looked up when they started (again after a preemption), the tokens found cached,
  // and the cached blocks an allocation evicted. vLLM's prefix_cache_queries / _hits.
  std::int64_t prefix_queried_tokens = 0;
  std::int64_t prefix_hit_tokens = 0;
  std::int64_t prefix_evictions = 0;
  std::int64_t prefix_host_hit_tokens = 0;  // of prefix_hit_tokens, those loaded from the host tier

  int outstanding() const { return waiting + running; }
  const std::string& model() const { return instance->model.name; }
  // True for any model (""), for its model's name and for the name its model is a version of.
  bool serves(const std::string& model_name) const {
    return model_name.empty() || model_name == instance->model.name ||
           (!instance->model.version_of.empty() && model_name == instance->model.version_of);
  }
  double kv_used_fraction() const {
    return kv_blocks_total > 0 ? 1.0 - double(kv_blocks_free) / double(kv_blocks_total) : 0.0;
  }
};

// What of the workers' views a policy reads. kMembership: health, lifecycle and models. kQueues:
// also waiting, running, outstanding work and latency, which change only when a request reaches or
// leaves a worker. kAll: also the KV blocks free and the utilization, which change with every step.
// The simulator lets a worker carry out its steps ahead of the router's decisions (its view exact
// in every field of kQueues) only when no policy that reads views needs more. A policy that
// declares less than it reads sees stale values; the default is kAll.
enum class ViewUse { kMembership, kQueues, kAll };

// Which workers' views changed since the router last looked. A driver that offers it notes every
// worker whose view it changes (touch), so that a router may keep an index over the views (a
// least-loaded structure) instead of scanning every worker per decision. One reader: the router,
// which takes the list at its decisions. Drivers that do not offer it leave ClusterView::changes
// null, and routers scan; the decisions are the same either way.
class ViewChanges {
 public:
  explicit ViewChanges(std::size_t workers = 0) : touched_(workers, 0) {}
  void touch(std::size_t w) {
    if (touched_[w]) return;
    touched_[w] = 1;
    list_.push_back(static_cast<int>(w));
  }
  // Calls f(worker) once for each worker touched since the last take(), and forgets them.
  template <class F>
  void take(F f) {
    for (int w : list_) {
      touched_[static_cast<std::size_t>(w)] = 0;
      f(w);
    }
    list_.clear();
  }

 private:
  std::vector<std::uint8_t> touched_;
  std::vector<int> list_;
};

class KvEventSource;  // policies/kv_events.h

// REQUIRES: `workers` outlives the view; a view is valid only during the call it is passed to.
struct ClusterView {
  TimeUs now_us = 0;
  const std::vector<WorkerView>* workers = nullptr;
  ViewChanges* changes = nullptr;  // null: the driver does not say which views changed
  // The workers' KV events, for a router that reads them (Router::reads_kv_events); null otherwise.
  KvEventSource* kv_events = nullptr;

  const std::vector<WorkerView>& all() const { return *workers; }
  std::size_t size() const { return workers->size(); }
  const WorkerView& operator[](std::size_t i) const { return (*workers)[i]; }
};

// True when worker `w` may take requests for `model`: it is ready (not stopped, starting or
// draining), not down, and it serves the model.
inline bool eligible(const WorkerView& w, const std::string& model) {
  return w.lifecycle == Lifecycle::kReady && w.health != Health::kDown && w.serves(model);
}
inline bool eligible(const WorkerView& w, const Request& request) { return eligible(w, request.model); }

}  // namespace twinfer
