#include "policies/routers/scored_router.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "policies/routers/router_candidates.h"

namespace twinfer {
namespace {

struct ScorerName {
  const char* name;
  ScoredRouter::Kind kind;
};
constexpr ScorerName kScorers[] = {{"prefix", ScoredRouter::Kind::kPrefix},
                                   {"kv_events", ScoredRouter::Kind::kKvEvents},
                                   {"queue", ScoredRouter::Kind::kQueue},
                                   {"running", ScoredRouter::Kind::kRunning},
                                   {"outstanding", ScoredRouter::Kind::kOutstanding},
                                   {"kv", ScoredRouter::Kind::kKv},
                                   {"work", ScoredRouter::Kind::kWork}};

void read_block_tokens(JsonParams& p, int& block_tokens) {
  p.get("block_tokens", block_tokens);
  p.require(block_tokens >= 1 && block_tokens <= (1 << 20), "block_tokens", "must be in [1, 2^20]");
}

// A draw among `candidates` with probabilities proportional to weight(w) (all finite, >= 0, one
// > 0).
template <class Weight>
int draw(const std::vector<int>& candidates, std::mt19937_64& rng, Weight weight) {
  double sum = 0;
  for (int w : candidates) sum += weight(w);
  double u = uniform_unit(rng) * sum;
  for (int w : candidates) {
    u -= weight(w);
    if (u < 0) return w;
  }
  return candidates.back();
}

}  // namespace

const std::vector<WorkerView>& ViewSnapshot::at(const ClusterView& view) {
  refreshed_ = refresh_us_ <= 0;
  if (refreshed_) return view.all();
  if (taken_us_ < 0 || view.now_us - taken_us_ >= refresh_us_ || copy_.size() != view.size()) {
    copy_ = view.all();
    taken_us_ = view.now_us;
    refreshed_ = true;
  }
  return copy_;
}

std::int64_t prefix_capacity(const WorkerView& w, int index_block_tokens) {
  if (w.kv_blocks_total <= 0 || w.kv_block_tokens <= 0) return 0;
  return std::max<std::int64_t>(1, w.kv_blocks_total * w.kv_block_tokens / index_block_tokens);
}

ScoredRouter::Options ScoredRouter::read_options(JsonParams& p, const PolicyContext& ctx) {
  Options o;
  o.seed = ctx.seed;
  nlohmann::json scorers = nlohmann::json::array({{{"name", "prefix"}, {"weight", 3}}, {{"name", "queue"}, {"weight", 2}}});
  p.get("scorers", scorers);
  p.require(scorers.is_array() && !scorers.empty(), "scorers", "expected a non-empty array of {\"name\", \"weight\"}");
  const PolicyRegistry<RouteScorer>& registered = route_scorer_registry();
  std::string valid;
  for (const ScorerName& s : kScorers) valid += (valid.empty() ? "" : ", ") + std::string(s.name);
  for (const std::string& name : registered.names()) valid += ", " + name;
  for (std::size_t i = 0; i < scorers.size(); ++i) {
    const std::string where = p.where() + ".scorers[" + std::to_string(i) + "]";
    if (!scorers[i].is_object()) throw Error(where + ": expected {\"name\", \"weight\"}, got " + scorers[i].dump());
    std::string name;
    Scorer scorer;
    const auto it = std::find_if(std::begin(kScorers), std::end(kScorers), [&](const ScorerName& s) {
      return scorers[i].contains("name") && scorers[i]["name"] == s.name;
    });
    if (it != std::end(kScorers) || !scorers[i].contains("name") || !scorers[i]["name"].is_string() ||
        !registered.contains(scorers[i]["name"].get<std::string>())) {
      JsonParams q(scorers[i], where, {});
      q.get("name", name);
      q.get("weight", scorer.weight);
      if (it != std::end(kScorers) && it->kind == Kind::kKvEvents) {
        q.get("in_flight_ms", o.in_flight_ms);
        q.require(std::isfinite(o.in_flight_ms) && o.in_flight_ms >= 0, "in_flight_ms", "must be >= 0 (0: none)");
      }
      q.done();
      if (it == std::end(kScorers)) throw Error(where + ".name: unknown scorer '" + name + "'; valid: " + valid);
      scorer.kind = it->kind;
    } else {
      // A registered scorer reads its own parameters; the router reads only its weight.
      nlohmann::json spec = scorers[i];
      if (spec.contains("weight")) {
        const nlohmann::json& w = spec["weight"];
        if (!w.is_number()) throw Error(where + ".weight: expected a number, got " + w.dump());
        scorer.weight = w.get<double>();
        spec.erase("weight");
      }
      scorer.kind = Kind::kRegistered;
      scorer.where = where;
      scorer.registered = registered.make(spec, ctx, where);
    }
    if (!(std::isfinite(scorer.weight) && scorer.weight >= 0)) throw Error(where + ".weight: must be >= 0");
    o.scorers.push_back(std::move(scorer));
  }
  std::string picker = "max";
  p.get("picker", picker);
  p.require(picker == "max" || picker == "softmax", "picker", "unknown picker '" + picker + "'; valid: max, softmax");
  o.softmax = picker == "softmax";
  p.require(o.softmax || !p.has("temperature"), "temperature", "applies only to the softmax picker");
  p.get("temperature", o.temperature);
  p.require(std::isfinite(o.temperature) && o.temperature > 0, "temperature", "must be > 0");
  p.get("seed", o.seed);
  read_block_tokens(p, o.block_tokens);
  p.get("refresh_ms", o.refresh_ms);
  p.require(std::isfinite(o.refresh_ms) && o.refresh_ms >= 0, "refresh_ms", "must be >= 0 (0: always current)");
  return o;
}

ScoredRouter::ScoredRouter(Options options)
    : options_(std::move(options)),
      index_(options_.block_tokens),
      in_flight_us_(static_cast<TimeUs>(std::llround(options_.in_flight_ms * 1000.0))),
      in_flight_(options_.block_tokens),
      snapshot_(static_cast<TimeUs>(std::llround(options_.refresh_ms * 1000.0))),
      rng_(options_.seed) {
  if (options_.scorers.empty()) options_.scorers = {Scorer::of(Kind::kPrefix, 3), Scorer::of(Kind::kQueue, 2)};
}

ViewUse ScoredRouter::view_use() const {
  ViewUse use = ViewUse::kMembership;
  for (const Scorer& s : options_.scorers) {
    const ViewUse reads = s.kind == Kind::kRegistered                       ? s.registered->view_use()
                          : s.kind == Kind::kKv || s.kind == Kind::kKvEvents ? ViewUse::kAll
                          : s.kind == Kind::kPrefix  ? ViewUse::kMembership
                                                     : ViewUse::kQueues;
    use = std::max(use, reads);
  }
  return use;
}

bool ScoredRouter::reads_kv_events() const {
  return std::any_of(options_.scorers.begin(), options_.scorers.end(),
                     [](const Scorer& s) { return s.kind == Kind::kKvEvents; });
}

RouteDecision ScoredRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  const std::vector<WorkerView>& seen = snapshot_.at(view);
  if (snapshot_.refreshed() && reads_kv_events()) events_.take(view, "policies.router (scored)");
  if (in_flight_us_ > 0) expire_in_flight(view.now_us);
  total_.assign(view.size(), 0.0);
  part_.assign(view.size(), 0.0);
  for (const Scorer& scorer : options_.scorers) {
    if (scorer.weight == 0) continue;
    // Min-max normalized load, lower is better.
    const auto load = [&](auto value) {
      double lo = std::numeric_limits<double>::infinity(), hi = -lo;
      for (int w : candidates_) {
        const double v = value(seen[static_cast<std::size_t>(w)]);
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
      for (int w : candidates_) {
        const double v = value(seen[static_cast<std::size_t>(w)]);
        part_[static_cast<std::size_t>(w)] = hi > lo ? (hi - v) / (hi - lo) : 1.0;
      }
    };
    switch (scorer.kind) {
      case Kind::kPrefix: {
        const std::int64_t blocks = index_.match(request, view.size(), matched_);
        for (int w : candidates_) {
          part_[static_cast<std::size_t>(w)] =
              blocks > 0 ? double(matched_[static_cast<std::size_t>(w)]) / double(blocks) : 0.0;
        }
        break;
      }
      case Kind::kKvEvents:
        events_.match(request, candidates_, seen, matched_);
        if (in_flight_us_ > 0) {
          in_flight_.match(request, view.size(), in_flight_matched_);
          for (int w : candidates_) {
            const auto i = static_cast<std::size_t>(w);
            matched_[i] = std::max(matched_[i], std::min<std::int64_t>(in_flight_matched_[i] * in_flight_.block_tokens(),
                                                                       request.input_tokens));
          }
        }
        for (int w : candidates_) {
          part_[static_cast<std::size_t>(w)] =
              request.input_tokens > 0 ? double(matched_[static_cast<std::size_t>(w)]) / double(request.input_tokens) : 0.0;
        }
        break;
      case Kind::kQueue: load([](const WorkerView& v) { return double(v.waiting); }); break;
      case Kind::kRunning: load([](const WorkerView& v) { return double(v.running); }); break;
      case Kind::kOutstanding: load([](const WorkerView& v) { return double(v.outstanding()); }); break;
      case Kind::kWork: load([](const WorkerView& v) { return double(v.outstanding_work_us); }); break;
      case Kind::kKv:
        for (int w : candidates_) part_[static_cast<std::size_t>(w)] = 1.0 - seen[static_cast<std::size_t>(w)].kv_used_fraction();
        break;
      case Kind::kRegistered: registered_scores(scorer, request, seen); break;
    }
    for (int w : candidates_) total_[static_cast<std::size_t>(w)] += scorer.weight * part_[static_cast<std::size_t>(w)];
  }
  int pick;
  if (options_.softmax) {
    double best = -std::numeric_limits<double>::infinity();
    for (int w : candidates_) best = std::max(best, total_[static_cast<std::size_t>(w)]);
    pick = draw(candidates_, rng_,
                [&](int w) { return std::exp((total_[static_cast<std::size_t>(w)] - best) / options_.temperature); });
  } else {
    pick = argmin_from(candidates_, tie_start_, [&](int w) { return -total_[static_cast<std::size_t>(w)]; });
    tie_start_ = pick + 1;
  }
  index_.record(request, pick, prefix_capacity(view[static_cast<std::size_t>(pick)], index_.block_tokens()));
  if (in_flight_us_ > 0) {
    in_flight_.record(request, pick, 0);
    in_flight_sent_.emplace_back(view.now_us, in_flight_.stamp());
  }
  return RouteDecision::to(pick);
}

void ScoredRouter::expire_in_flight(TimeUs now_us) {
  bool expired = false;
  std::uint64_t through = 0;
  while (!in_flight_sent_.empty() && now_us - in_flight_sent_.front().first >= in_flight_us_) {
    through = in_flight_sent_.front().second;
    expired = true;
    in_flight_sent_.pop_front();
  }
  if (expired) in_flight_.forget_through(through);
}

void ScoredRouter::registered_scores(const Scorer& scorer, const Request& request, const std::vector<WorkerView>& seen) {
  const std::vector<double> scores = scorer.registered->score(request, seen, candidates_);
  const auto where = [&] { return scorer.where + " (" + scorer.registered->name() + ").score()"; };
  if (scores.size() != candidates_.size()) {
    throw Error(where() + ": returned " + std::to_string(scores.size()) + " scores for " +
                std::to_string(candidates_.size()) + " candidates (one per candidate, in their order)");
  }
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!(scores[i] >= 0 && scores[i] <= 1)) {
      throw Error(where() + ": score " + std::to_string(scores[i]) + " of worker " + std::to_string(candidates_[i]) +
                  " (candidate " + std::to_string(i) + ") is not in [0, 1]");
    }
    part_[static_cast<std::size_t>(candidates_[i])] = scores[i];
  }
}

CacheAwareRouter::Options CacheAwareRouter::read_options(JsonParams& p) {
  Options o;
  p.get("cache_threshold", o.cache_threshold);
  p.require(o.cache_threshold >= 0 && o.cache_threshold <= 1, "cache_threshold", "must be in [0, 1]");
  p.get("balance_abs_threshold", o.balance_abs_threshold);
  p.require(o.balance_abs_threshold >= 0, "balance_abs_threshold", "must be >= 0");
  p.get("balance_rel_threshold", o.balance_rel_threshold);
  p.require(o.balance_rel_threshold >= 1, "balance_rel_threshold", "must be >= 1");
  read_block_tokens(p, o.block_tokens);
  return o;
}

RouteDecision CacheAwareRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  int lo = std::numeric_limits<int>::max(), hi = 0;
  for (int w : candidates_) {
    lo = std::min(lo, view[static_cast<std::size_t>(w)].outstanding());
    hi = std::max(hi, view[static_cast<std::size_t>(w)].outstanding());
  }
  const bool imbalanced = double(hi - lo) > options_.balance_abs_threshold &&
                          double(hi) > double(lo) * options_.balance_rel_threshold;
  int pick;
  if (imbalanced) {
    pick = argmin_from(candidates_, tie_start_, [&](int w) { return view[static_cast<std::size_t>(w)].outstanding(); });
  } else {
    const std::int64_t blocks = index_.match(request, view.size(), matched_);
    const int best = argmin_from(candidates_, tie_start_, [&](int w) { return -matched_[static_cast<std::size_t>(w)]; });
    const double ratio = blocks > 0 ? double(matched_[static_cast<std::size_t>(best)]) / double(blocks) : 0.0;
    pick = ratio > options_.cache_threshold ? best
                                            : argmin_from(candidates_, tie_start_, [&](int w) { return index_.blocks(w); });
  }
  tie_start_ = pick + 1;
  index_.record(request, pick, prefix_capacity(view[static_cast<std::size_t>(pick)], index_.block_tokens()));
  return RouteDecision::to(pick);
}

KvOverlapRouter::Options KvOverlapRouter::read_options(JsonParams& p, std::uint64_t default_seed) {
  Options o;
  o.seed = default_seed;
  p.get("overlap_score_weight", o.overlap_score_weight);
  p.require(std::isfinite(o.overlap_score_weight) && o.overlap_score_weight >= 0, "overlap_score_weight", "must be >= 0");
  p.get("temperature", o.temperature);
  p.require(std::isfinite(o.temperature) && o.temperature >= 0, "temperature", "must be >= 0 (0: the lowest cost)");
  p.get("seed", o.seed);
  read_block_tokens(p, o.block_tokens);
  p.get("use_kv_events", o.use_kv_events);
  return o;
}

RouteDecision KvOverlapRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  const std::int64_t blocks = std::int64_t{request.input_tokens} / index_.block_tokens();
  if (options_.use_kv_events) {
    events_.take(view, "policies.router (kv_overlap)");
    events_.match(request, candidates_, view.all(), matched_);
  } else {
    index_.match(request, view.size(), matched_);
  }
  cost_.assign(view.size(), 0.0);
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (int w : candidates_) {
    const WorkerView& v = view[static_cast<std::size_t>(w)];
    // The prompt's blocks the worker would compute, in the router's blocks (the events count tokens).
    const double matched = options_.use_kv_events
                               ? double(matched_[static_cast<std::size_t>(w)]) / index_.block_tokens()
                               : double(matched_[static_cast<std::size_t>(w)]);
    const double prefill = std::max(0.0, double(blocks) - matched);
    const double active = v.kv_block_tokens > 0
                              ? double(v.kv_blocks_total - v.kv_blocks_free) * v.kv_block_tokens / index_.block_tokens()
                              : 0.0;
    const double c = options_.overlap_score_weight * prefill + active;
    cost_[static_cast<std::size_t>(w)] = c;
    lo = std::min(lo, c);
    hi = std::max(hi, c);
  }
  int pick;
  if (options_.temperature > 0) {
    pick = draw(candidates_, rng_, [&](int w) {
      const double normalized = hi > lo ? (cost_[static_cast<std::size_t>(w)] - lo) / (hi - lo) : 0.0;
      return std::exp(-normalized / options_.temperature);
    });
  } else {
    pick = argmin_from(candidates_, tie_start_, [&](int w) { return cost_[static_cast<std::size_t>(w)]; });
    tie_start_ = pick + 1;
  }
  if (!options_.use_kv_events) {
    index_.record(request, pick, prefix_capacity(view[static_cast<std::size_t>(pick)], index_.block_tokens()));
  }
  return RouteDecision::to(pick);
}

}  // namespace twinfer
