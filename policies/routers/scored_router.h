// Routing as a pipeline, in llm-d's shape: the candidates (eligible workers), each scored by
// weighted scorers in [0, 1], then a picker. Also the two best-known cache-aware routers, built on
// the same prefix index: SGLang's cache-aware router and Dynamo's KV router.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/params.h"
#include "policies/registry.h"
#include "policies/route_scorer.h"
#include "policies/router.h"
#include "policies/routers/kv_event_index.h"
#include "policies/routers/prefix_index.h"

namespace twinfer {

// The views a router scores on, refreshed every `refresh_us` (0: always current), so that the
// effect of stale load signals (several arrivals piling onto the worker that looked idlest) can be
// studied; the same in the simulator and the runtime, since it is the router's own copy.
// Eligibility (health, lifecycle, model) is always read from the current view.
class ViewSnapshot {
 public:
  explicit ViewSnapshot(TimeUs refresh_us = 0) : refresh_us_(refresh_us) {}
  const std::vector<WorkerView>& at(const ClusterView& view);
  // True when the last at() took a new copy (always with refresh 0): a router that keeps more of
  // the workers' signals (their KV events) takes them then, so that they are as stale as the views.
  bool refreshed() const { return refreshed_; }

 private:
  TimeUs refresh_us_;
  bool refreshed_ = false;
  TimeUs taken_us_ = -1;
  std::vector<WorkerView> copy_;
};

// The prefix index's capacity for a worker: its KV cache in the index's blocks (0: unbounded, for
// a worker that does not track KV memory).
std::int64_t prefix_capacity(const WorkerView& w, int index_block_tokens);

// Scorers (each in [0, 1], higher is better, over the candidates):
//   prefix       leading prompt blocks the router sent to the worker before / the prompt's blocks
//   kv_events    prompt tokens in the leading blocks the worker reported cached in its KV events
//                (stored, not since evicted) / the prompt's tokens (llm-d's precise prefix-cache
//                scorer); taken when the views refresh. With "in_flight_ms" > 0 (its one
//                parameter), the prompt blocks the router sent to a worker in that time count as
//                held there too, until then: a turn that follows its history while that history
//                still waits or runs, not yet reported, finds it (in-flight tracking)
//   queue        waiting requests, min-max normalized (llm-d's queue scorer): (max - q) / (max - min)
//   running      running sequences, min-max normalized
//   outstanding  waiting + running, min-max normalized
//   kv           1 - the fraction of its KV cache in use
//   work         predicted outstanding work, min-max normalized
// and any scorer added to route_scorer_registry() (Python's twinfer.register_scorer), built from
// its entry in "scorers" (its other keys are its parameters); its scores must be in [0, 1].
// All equal: 1 for every candidate. Pickers: "max" (ties round-robin from the last pick), or
// "softmax" (a draw with probabilities exp((score - best) / temperature)).
class ScoredRouter : public Router {
 public:
  enum class Kind { kPrefix, kKvEvents, kQueue, kRunning, kOutstanding, kKv, kWork, kRegistered };
  struct Scorer {
    Kind kind = Kind::kQueue;
    double weight = 1;
    std::shared_ptr<RouteScorer> registered;  // kRegistered: the scorer route_scorer_registry() made
    std::string where;                        // kRegistered: its config key, for errors
    // A built-in scorer.
    static Scorer of(Kind kind, double weight) {
      Scorer s;
      s.kind = kind;
      s.weight = weight;
      return s;
    }
  };
  struct Options {
    std::vector<Scorer> scorers;  // default: prefix 3, queue 2 (llm-d's default profile)
    bool softmax = false;
    double temperature = 0.1;
    std::uint64_t seed = 1;
    int block_tokens = 16;
    double refresh_ms = 0;
    double in_flight_ms = 0;  // the kv_events scorer's in-flight tracking; 0: none
  };
  // Reads "scorers" ([{"name", "weight", params...}]; kv_events also "in_flight_ms"), "picker",
  // "temperature", "seed" (default: ctx.seed), "block_tokens", "refresh_ms"; makes the registered
  // scorers named. Does not call p.done().
  static Options read_options(JsonParams& p, const PolicyContext& ctx);

  explicit ScoredRouter(Options options);
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "scored"; }
  ViewUse view_use() const override;
  bool reads_kv_events() const override;

  // The candidates' total scores of the last decision, by worker index (for tests and notebooks).
  const std::vector<double>& last_scores() const { return total_; }

 private:
  // A registered scorer's scores into part_, checked.
  void registered_scores(const Scorer& scorer, const Request& request, const std::vector<WorkerView>& seen);

  // Forgets the in-flight blocks sent more than in_flight_ms before `now_us`.
  void expire_in_flight(TimeUs now_us);

  Options options_;
  PrefixIndex index_;
  KvEventIndex events_;
  TimeUs in_flight_us_;
  PrefixIndex in_flight_;                                  // blocks sent in the last in_flight_us_
  std::deque<std::pair<TimeUs, std::uint64_t>> in_flight_sent_;  // (when, in_flight_.stamp() after)
  std::vector<std::int64_t> in_flight_matched_;
  ViewSnapshot snapshot_;
  std::mt19937_64 rng_;
  int tie_start_ = 0;
  std::vector<int> candidates_;
  std::vector<std::int64_t> matched_;
  std::vector<double> total_, part_;
};

// SGLang's cache-aware router (sgl-router): when the load is balanced, the worker whose tree
// matches the most of the prompt if that match exceeds cache_threshold of it, else the worker with
// the smallest tree (the most room); when unbalanced (max - min outstanding > balance_abs_threshold
// and max > min * balance_rel_threshold), the least loaded. The prompt then joins the chosen
// worker's tree. Trees are the router's prefix index, per worker up to its KV cache size.
class CacheAwareRouter : public Router {
 public:
  struct Options {
    double cache_threshold = 0.5;
    double balance_abs_threshold = 32;
    double balance_rel_threshold = 1.0001;
    int block_tokens = 16;
  };
  static Options read_options(JsonParams& p);

  explicit CacheAwareRouter(Options options) : options_(options), index_(options.block_tokens) {}
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "cache_aware"; }
  ViewUse view_use() const override { return ViewUse::kQueues; }

 private:
  Options options_;
  PrefixIndex index_;
  int tie_start_ = 0;
  std::vector<int> candidates_;
  std::vector<std::int64_t> matched_;
};

// Dynamo's KV router cost: overlap_score_weight * (the prompt's blocks the worker would compute:
// its blocks less the overlap the router's index finds) + the worker's KV blocks in use (decode
// load), in the index's blocks; the lowest cost at temperature 0, else a draw with probabilities
// exp(-normalized cost / temperature) (costs normalized to [0, 1] over the candidates). With
// use_kv_events (Dynamo's default) the overlap is what the workers' KV events say they hold, in
// their own blocks, else what the router sent where.
class KvOverlapRouter : public Router {
 public:
  struct Options {
    double overlap_score_weight = 1.0;
    double temperature = 0;
    std::uint64_t seed = 1;
    int block_tokens = 16;
    bool use_kv_events = false;
  };
  static Options read_options(JsonParams& p, std::uint64_t default_seed);

  explicit KvOverlapRouter(Options options) : options_(options), index_(options.block_tokens), rng_(options.seed) {}
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "kv_overlap"; }
  ViewUse view_use() const override { return ViewUse::kAll; }
  bool reads_kv_events() const override { return options_.use_kv_events; }

 private:
  Options options_;
  PrefixIndex index_;
  KvEventIndex events_;
  std::mt19937_64 rng_;
  int tie_start_ = 0;
  std::vector<int> candidates_;
  std::vector<std::int64_t> matched_;
  std::vector<double> cost_;
};

}  // namespace twinfer
