#include "serving/elastic/elastic_cluster.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"
#include "core/params.h"
#include "policies/registry.h"

namespace twinfer {

struct ElasticCluster::Pool {
  std::string model;
  std::vector<int> workers;  // in config order
  int min_replicas = 1;
  int max_replicas = 1;
  std::unique_ptr<Autoscaler> autoscaler;
  std::int64_t arrivals = 0;  // since the previous decision
  double input_tokens = 0;    // sums over those arrivals
  double output_tokens = 0;
  std::vector<std::int64_t> outputs;  // each arrival's output tokens
  int scale_ups = 0;          // decisions that added replicas
  int scale_downs = 0;
  std::int64_t replicas_started = 0;
  std::int64_t replicas_stopped = 0;
  // Replica counts over time, one entry per change.
  std::vector<double> t_s;
  std::vector<int> ready, starting, draining;
};

namespace {

double price_of(const InstanceSpec& inst) { return inst.device.price_per_hour * inst.tp(); }

bool paid(Lifecycle l) { return l != Lifecycle::kStopped; }

const char* lifecycle_name(Lifecycle l) {
  switch (l) {
    case Lifecycle::kStopped: return "stopped";
    case Lifecycle::kStarting: return "starting";
    case Lifecycle::kReady: return "ready";
    case Lifecycle::kDraining: return "draining";
  }
  return "unknown";
}

}  // namespace

ElasticCluster::ElasticCluster(const RunConfig& config, const CostModel& cost, std::uint64_t seed, Recorder& recorder,
                               const VersionChoice* versions)
    : options_(config.autoscaling), cluster_(config.cluster), recorder_(recorder), versions_(versions),
      workers_(config.cluster.instances.size()) {
  std::map<std::string, int> pool_of_model;
  for (const auto& inst : cluster_.instances) {
    auto [it, added] = pool_of_model.emplace(inst.model.name, int(pools_.size()));
    if (added) {
      pools_.push_back(std::make_unique<Pool>());
      pools_.back()->model = inst.model.name;
    }
    pools_[it->second]->workers.push_back(inst.index);
    workers_[inst.index].pool = it->second;
  }
  for (std::size_t pi = 0; pi < pools_.size(); ++pi) {
    Pool& pool = *pools_[pi];
    const int n = int(pool.workers.size());
    if (!options_.enabled()) {
      pool.min_replicas = pool.max_replicas = n;
    } else {
      const std::string where = config.source + ": autoscaling";
      pool.min_replicas = options_.min_replicas;
      pool.max_replicas = options_.max_replicas > 0 ? options_.max_replicas : n;
      if (pool.min_replicas > n || pool.max_replicas > n) {
        throw Error(where + ": model '" + pool.model + "' has " + std::to_string(n) +
                    " instances, fewer than min_replicas " + std::to_string(pool.min_replicas) + " or max_replicas " +
                    std::to_string(pool.max_replicas) + " (declare every replica the pool may use under cluster.hosts)");
      }
      PolicyContext ctx;
      ctx.cost = &cost;
      ctx.seed = seed + pi;
      ctx.base_dir = config.base_dir;
      ctx.slo = &config.workload.slo;
      pool.autoscaler = autoscaler_registry().make(options_.autoscaler, ctx, where + ".autoscaler");
    }
    int initial = !options_.enabled() ? n
                  : std::clamp(options_.initial_replicas > 0 ? options_.initial_replicas : pool.min_replicas,
                               pool.min_replicas, pool.max_replicas);
    // A version that its split sends nothing within a cold start is not loaded yet (a hot swap).
    if (options_.enabled() && versions_ && versions_->max_share(pool.model, 0, lead_us(pool)) == 0) initial = 0;
    // The cheapest instances start first (config order among equals), as in resize().
    std::vector<int> order = pool.workers;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return price_of(cluster_.instances[a]) < price_of(cluster_.instances[b]);
    });
    for (int k = 0; k < n; ++k) {
      Worker& w = workers_[order[k]];
      w.lifecycle = k < initial ? Lifecycle::kReady : Lifecycle::kStopped;
      w.paid_since_us = k < initial ? 0 : kNever;
    }
    record_pool(pool, 0);
  }
}

ElasticCluster::~ElasticCluster() = default;

TimeUs ElasticCluster::cold_start_us(int worker) const {
  return twinfer::cold_start_us(options_.cold_start, cluster_.instances[worker]);
}

void ElasticCluster::on_routed(int worker, const Request& request) {
  // Only decide() reads the tallies (its sample); without an autoscaler they would grow by a
  // number per request of the run.
  if (!options_.enabled()) return;
  Pool& pool = *pools_[workers_[worker].pool];
  ++pool.arrivals;
  pool.input_tokens += request.input_tokens;
  pool.output_tokens += request.output_tokens;
  pool.outputs.push_back(request.output_tokens);
}

TimeUs ElasticCluster::lead_us(const Pool& pool) const { return options_.interval_us + cold_start_us(pool.workers.front()); }

std::pair<int, int> ElasticCluster::split_bounds(const Pool& pool, TimeUs now_us, std::string& reason) const {
  const std::pair<int, int> own = {pool.min_replicas, pool.max_replicas};
  const std::vector<std::string>* family = versions_ ? versions_->family_versions(pool.model) : nullptr;
  if (!family) return own;
  const double ahead = versions_->max_share(pool.model, now_us, now_us + lead_us(pool));
  if (ahead < 0) return own;
  const double share = versions_->max_share(pool.model, now_us, now_us);
  auto pool_of = [&](const std::string& model) -> const Pool* {
    for (const auto& p : pools_) {
      if (p->model == model) return p.get();
    }
    return nullptr;
  };
  if (ahead == 0) {
    for (const std::string& other : *family) {
      if (other == pool.model || versions_->max_share(other, now_us, now_us) <= 0) continue;
      const Pool* p = pool_of(other);
      if (!p || count(*p, Lifecycle::kReady) == 0) {
        reason = "split: retiring once " + other + " is ready";
        return {1, pool.max_replicas};
      }
    }
    reason = "split: no traffic within " + format_number(s_from_us(lead_us(pool))) + " s, retired";
    return {0, 0};
  }
  if (ahead > share && share < 1) {
    int others = 0;
    for (const std::string& other : *family) {
      const Pool* p = other == pool.model ? nullptr : pool_of(other);
      if (p) others += count(*p, Lifecycle::kReady) + count(*p, Lifecycle::kStarting);
    }
    const int floor = int(std::ceil(ahead * double(others) / (1 - share) - 1e-9));
    if (floor > pool.min_replicas) {
      reason = "split: share " + format_number(ahead) + " within the lead needs " + std::to_string(floor);
      return {std::min(floor, pool.max_replicas), pool.max_replicas};
    }
  }
  return own;
}

int ElasticCluster::count(const Pool& pool, Lifecycle l) const {
  int n = 0;
  for (int w : pool.workers) n += workers_[w].lifecycle == l ? 1 : 0;
  return n;
}

void ElasticCluster::record_pool(Pool& pool, TimeUs now_us) {
  int r = count(pool, Lifecycle::kReady), s = count(pool, Lifecycle::kStarting), d = count(pool, Lifecycle::kDraining);
  if (!pool.t_s.empty() && pool.ready.back() == r && pool.starting.back() == s && pool.draining.back() == d) return;
  if (!pool.t_s.empty() && pool.t_s.back() == s_from_us(now_us)) {  // several changes at one time: keep the last
    pool.ready.back() = r;
    pool.starting.back() = s;
    pool.draining.back() = d;
  } else {
    pool.t_s.push_back(s_from_us(now_us));
    pool.ready.push_back(r);
    pool.starting.push_back(s);
    pool.draining.push_back(d);
  }
  recorder_.counter(now_us, "replicas " + pool.model, {{"ready", r}, {"starting", s}, {"draining", d}});
}

void ElasticCluster::set(int worker, Lifecycle to, TimeUs now_us) {
  Worker& w = workers_[worker];
  if (w.lifecycle == to) return;
  if (paid(w.lifecycle) && !paid(to)) {
    w.gpu_seconds += s_from_us(now_us - w.paid_since_us) * cluster_.instances[worker].tp();
    w.paid_since_us = kNever;
  } else if (!paid(w.lifecycle) && paid(to)) {
    w.paid_since_us = now_us;
  }
  if (to == Lifecycle::kReady) w.ready_since_us = now_us;
  if (to == Lifecycle::kStarting) ++w.epoch;
  recorder_.marker(now_us, worker, lifecycle_name(to), lifecycle_name(w.lifecycle) + std::string(" -> ") + lifecycle_name(to));
  w.lifecycle = to;
  record_pool(*pools_[w.pool], now_us);
}

PoolSample ElasticCluster::sample(Pool& pool, const ClusterView& view, const std::vector<TimeUs>& busy_us) {
  PoolSample s;
  s.now_us = view.now_us;
  s.interval_us = last_decision_us_ < view.now_us ? view.now_us - last_decision_us_ : options_.interval_us;
  s.min_replicas = pool.min_replicas;
  s.max_replicas = pool.max_replicas;
  s.instance = &cluster_.instances[pool.workers.front()];
  s.cold_start_us = cold_start_us(pool.workers.front());
  double busy_sum = 0, kv_sum = 0;
  for (int wi : pool.workers) {
    Worker& w = workers_[wi];
    const WorkerView& v = view[wi];
    TimeUs busy = busy_us[wi] - w.busy_seen_us;
    w.busy_seen_us = busy_us[wi];
    s.waiting += v.waiting;
    s.running += v.running;
    switch (w.lifecycle) {
      case Lifecycle::kReady: {
        ++s.ready;
        TimeUs span = std::min(s.interval_us, view.now_us - w.ready_since_us);
        busy_sum += span > 0 ? std::min(1.0, double(busy) / double(span)) : 0.0;
        kv_sum += v.kv_used_fraction();
        break;
      }
      case Lifecycle::kStarting: ++s.starting; break;
      case Lifecycle::kDraining: ++s.draining; break;
      case Lifecycle::kStopped: break;
    }
  }
  if (s.ready > 0) {
    s.utilization = busy_sum / s.ready;
    s.kv_used_fraction = kv_sum / s.ready;
  }
  s.arrivals = pool.arrivals;
  if (pool.arrivals > 0) {
    s.mean_input_tokens = pool.input_tokens / double(pool.arrivals);
    s.mean_output_tokens = pool.output_tokens / double(pool.arrivals);
    // Nearest rank: the smallest value with at least 95 % of the arrivals at or below it.
    const std::size_t rank = std::size_t(std::ceil(0.95 * double(pool.outputs.size())));
    auto nth = pool.outputs.begin() + std::ptrdiff_t(rank - 1);
    std::nth_element(pool.outputs.begin(), nth, pool.outputs.end());
    s.p95_output_tokens = double(*nth);
  }
  pool.arrivals = 0;
  pool.input_tokens = pool.output_tokens = 0;
  pool.outputs.clear();
  return s;
}

std::vector<LifecycleChange> ElasticCluster::decide(const ClusterView& view, const std::vector<TimeUs>& busy_us) {
  std::vector<LifecycleChange> out;
  if (!options_.enabled()) return out;
  for (auto& pool : pools_) {
    PoolSample s = sample(*pool, view, busy_us);
    ScaleDecision d = pool->autoscaler->decide(s);
    if (d.desired < 0) {
      throw Error("autoscaling.autoscaler (" + pool->autoscaler->name() + ") for " + pool->model + ": decided " +
                  std::to_string(d.desired) + " replicas; want >= 0");
    }
    if (d.reason.empty()) d.reason = "autoscaler " + pool->autoscaler->name();
    std::string split_reason;
    auto [lo, hi] = split_bounds(*pool, view.now_us, split_reason);
    int desired = std::clamp(d.desired, lo, hi);
    if (desired == s.current()) continue;
    (desired > s.current() ? pool->scale_ups : pool->scale_downs)++;
    // The split's note when its bounds, not the pool's own, set the answer.
    const bool split_set = desired != std::clamp(d.desired, pool->min_replicas, pool->max_replicas);
    const std::string& why = split_set ? split_reason : d.reason;
    recorder_.marker(view.now_us, -1, "scale " + pool->model,
                     std::to_string(s.current()) + " -> " + std::to_string(desired) + ": " + why);
    resize(*pool, desired, view.now_us, view, out);
  }
  last_decision_us_ = view.now_us;
  return out;
}

// Growing resumes draining workers first (they are warm), then starts the cheapest stopped ones.
// Shrinking cancels cold starts first (they serve nothing yet), then drains the most expensive
// ready workers, the least loaded first.
void ElasticCluster::resize(Pool& pool, int desired, TimeUs now_us, const ClusterView& view,
                            std::vector<LifecycleChange>& out) {
  auto change = [&](int w, Lifecycle to) {
    if (to == Lifecycle::kStarting) ++pool.replicas_started;
    if (to == Lifecycle::kStopped || to == Lifecycle::kDraining) ++pool.replicas_stopped;
    set(w, to, now_us);
    out.push_back({w, to});
  };
  int current = count(pool, Lifecycle::kReady) + count(pool, Lifecycle::kStarting);
  std::vector<int> order = pool.workers;
  if (desired > current) {
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      bool da = workers_[a].lifecycle == Lifecycle::kDraining, db = workers_[b].lifecycle == Lifecycle::kDraining;
      if (da != db) return da;
      return price_of(cluster_.instances[a]) < price_of(cluster_.instances[b]);
    });
    for (int w : order) {
      if (current == desired) break;
      Lifecycle l = workers_[w].lifecycle;
      if (l == Lifecycle::kDraining) {
        set(w, Lifecycle::kReady, now_us);
        out.push_back({w, Lifecycle::kReady});
        ++current;
      } else if (l == Lifecycle::kStopped) {
        change(w, Lifecycle::kStarting);
        ++current;
      }
    }
    return;
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    bool sa = workers_[a].lifecycle == Lifecycle::kStarting, sb = workers_[b].lifecycle == Lifecycle::kStarting;
    if (sa != sb) return sa;
    double pa = price_of(cluster_.instances[a]), pb = price_of(cluster_.instances[b]);
    if (pa != pb) return pa > pb;
    if (view[a].outstanding() != view[b].outstanding()) return view[a].outstanding() < view[b].outstanding();
    return a > b;
  });
  for (int w : order) {
    if (current == desired) break;
    Lifecycle l = workers_[w].lifecycle;
    if (l == Lifecycle::kStarting) {
      change(w, Lifecycle::kStopped);
      --current;
    } else if (l == Lifecycle::kReady) {
      change(w, Lifecycle::kDraining);
      --current;
    }
  }
}

bool ElasticCluster::ready(int worker, int epoch, TimeUs now_us) {
  Worker& w = workers_[worker];
  if (w.lifecycle != Lifecycle::kStarting || w.epoch != epoch) return false;
  set(worker, Lifecycle::kReady, now_us);
  return true;
}

void ElasticCluster::stopped(int worker, TimeUs now_us) {
  if (workers_[worker].lifecycle != Lifecycle::kDraining) return;
  set(worker, Lifecycle::kStopped, now_us);
}

void ElasticCluster::finish(TimeUs end_us) {
  end_us_ = end_us;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    Worker& w = workers_[i];
    if (!paid(w.lifecycle)) continue;
    w.gpu_seconds += s_from_us(end_us - w.paid_since_us) * cluster_.instances[i].tp();
    w.paid_since_us = end_us;
  }
}

nlohmann::json ElasticCluster::summary(std::int64_t completed) const {
  double gpu_hours = 0, cost = 0;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    double hours = workers_[i].gpu_seconds / 3600.0;
    gpu_hours += hours;
    cost += hours * cluster_.instances[i].device.price_per_hour;
  }
  nlohmann::json out;
  out["cost"] = {{"gpu_hours", gpu_hours},
                 {"cost", cost},
                 {"cost_per_million_requests", completed > 0 ? cost / double(completed) * 1e6 : 0.0}};
  if (!options_.enabled()) return out;
  nlohmann::json pools = nlohmann::json::array();
  for (const auto& p : pools_) {
    int peak = 0;
    double replica_seconds = 0;
    for (std::size_t k = 0; k < p->t_s.size(); ++k) {
      peak = std::max(peak, p->ready[k] + p->starting[k] + p->draining[k]);
      double next = k + 1 < p->t_s.size() ? p->t_s[k + 1] : s_from_us(end_us_);
      replica_seconds += (next - p->t_s[k]) * (p->ready[k] + p->starting[k] + p->draining[k]);
    }
    double span = end_us_ != kNever ? s_from_us(end_us_) : 0;
    pools.push_back({{"model", p->model},
                     {"autoscaler", p->autoscaler->name()},
                     {"min_replicas", p->min_replicas},
                     {"max_replicas", p->max_replicas},
                     {"scale_ups", p->scale_ups},
                     {"scale_downs", p->scale_downs},
                     {"replicas_started", p->replicas_started},
                     {"replicas_stopped", p->replicas_stopped},
                     {"peak_replicas", peak},
                     {"mean_replicas", span > 0 ? replica_seconds / span : 0.0},
                     {"replicas", {{"t_s", p->t_s}, {"ready", p->ready}, {"starting", p->starting},
                                   {"draining", p->draining}, {"end_s", span}}}});
  }
  out["autoscaling"] = {{"interval_s", s_from_us(options_.interval_us)},
                        {"cold_start", {{"startup_s", options_.cold_start.startup_s},
                                        {"load_gbps", options_.cold_start.load_gbps}}},
                        {"pools", pools}};
  return out;
}

}  // namespace twinfer
