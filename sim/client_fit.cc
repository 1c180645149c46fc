#include "sim/client_fit.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>

#include "core/error.h"
#include "core/nelder_mead.h"
#include "policies/cost/calibrated_cost_model.h"
#include "policies/cost/roofline_cost_model.h"
#include "policies/registry.h"
#include "serving/fidelity.h"
#include "serving/step_log.h"
#include "policies/cost/cost_fit.h"
#include "sim/simulator.h"

namespace twinfer::sim {
namespace {

namespace fs = std::filesystem;

struct PriorEntry {
  CostTableKey key;
  StepCoefficients coefficients;  // without the communication terms
};

struct Prior {
  std::vector<PriorEntry> entries;
  std::string name;         // what it came from
  double dispatch_us = 0;   // the prior's measured dispatch delay, if any
  bool static_padding = true;
};

void add_entry(Prior& p, const InstanceSpec& inst, StepCoefficients c) {
  const CostTableKey key = CostTableKey::of(inst);
  for (const auto& e : p.entries) {
    if (e.key == key) return;
  }
  c.comm_s = c.comm_s_per_token = 0;  // set_comm_terms() adds them from each instance's gpu_link
  p.entries.push_back({key, c});
}

Prior prior_of(const RunConfig& config, const nlohmann::json& file) {
  Prior p;
  if (!file.is_null()) {
    const CalibratedCostModel model(file, "the prior cost file");
    for (const auto& inst : config.cluster.instances) add_entry(p, inst, model.coefficients(inst));
    p.name = "the prior cost file";
    const nlohmann::json engine = file.value("meta", nlohmann::json::object()).value("engine", nlohmann::json());
    if (engine.is_object() && engine.value("dispatch_us", nlohmann::json()).is_number()) {
      p.dispatch_us = engine["dispatch_us"].get<double>();
    }
    return p;
  }
  PolicyContext ctx;
  ctx.base_dir = config.base_dir;
  const auto cost = cost_model_registry().make(config.cost_model, ctx, "policies.cost_model");
  if (const auto* roofline = dynamic_cast<const RooflineCostModel*>(cost.get())) {
    const auto& o = roofline->options();
    for (const auto& inst : config.cluster.instances) {
      add_entry(p, inst,
                roofline_coefficients(inst, o.compute_efficiency, o.bandwidth_efficiency, o.iteration_overhead_us));
    }
    p.static_padding = o.static_padding;
  } else if (const auto* calibrated = dynamic_cast<const CalibratedCostModel*>(cost.get())) {
    for (const auto& inst : config.cluster.instances) add_entry(p, inst, calibrated->coefficients(inst));
  } else {
    throw Error("policies.cost_model: fitting to client logs scales a roofline or calibrated model, not '" +
                cost->name() + "'; give a prior cost file (--cost)");
  }
  p.name = "policies.cost_model (" + cost->name() + ")";
  return p;
}

StepCoefficients scaled(StepCoefficients c, const ClientFitScales& s) {
  c.linear_s_per_flop *= s.compute;
  c.attention_s_per_flop *= s.compute;
  c.weights_s_per_byte *= s.memory;
  c.gemm_weights_s_per_byte *= s.memory;
  c.kv_s_per_byte *= s.memory;
  c.spill_s_per_byte *= s.memory;
  c.step_s *= s.overhead;
  c.sequence_s *= s.overhead;
  return c;
}

nlohmann::json cost_table(const Prior& prior, const ClientFitScales& s, const nlohmann::json& meta) {
  nlohmann::json entries = nlohmann::json::array();
  for (const auto& e : prior.entries) {
    entries.push_back({{"device", e.key.device},
                       {"model", e.key.model},
                       {"tp", e.key.tp},
                       {"coefficients", coefficients_json(scaled(e.coefficients, s))}});
  }
  return {{"format", "twinfer-cost-v1"}, {"meta", meta}, {"entries", entries}};
}

// A scratch folder, removed with everything in it when the fit ends (or fails).
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("twinfer-client-fit-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A simulation of one log: its requests (with their workers' names) and, when asked, its steps.
struct SimRun {
  std::vector<RequestRecord> requests;
  std::vector<std::string> workers;
  std::vector<LoggedStep> steps;
};

// One simulation of every log with the scaled model.
std::vector<SimRun> simulate_logs(const RunConfig& config, const std::vector<ClientLog>& logs, const Prior& prior,
                                  const ClientFitScales& s, const ScratchDir& dir, const ClientFitOptions& options,
                                  bool steps) {
  const std::string cost_path = (dir.path / "cost.json").string();
  {
    std::ofstream f(cost_path);
    f << cost_table(prior, s, nlohmann::json::object()).dump() << "\n";
    if (!f) throw Error(cost_path + ": cannot write");
  }
  RunConfig cfg = config;
  cfg.cost_model = {{"name", "calibrated"}, {"path", cost_path}, {"static_padding", prior.static_padding}};
  cfg.sim.dispatch_us = s.dispatch_us;
  cfg.sim.timeline = false;
  cfg.sim.step_log = steps;
  std::vector<SimRun> out;
  for (std::size_t i = 0; i < logs.size(); ++i) {
    SimRunOptions opt;
    opt.seed = options.seed;
    opt.in_child = options.in_child;
    opt.out_dir = (dir.path / ("log" + std::to_string(i))).string();
    simulate(cfg, logs[i].trace, opt);
    SimRun run;
    run.requests = read_requests_csv(opt.out_dir + "/requests.csv", &run.workers);
    if (steps) run.steps = read_step_log(opt.out_dir + "/steps.csv");
    if (run.requests.size() != logs[i].measured.size()) {
      throw Error(logs[i].source + ": the simulation holds " + std::to_string(run.requests.size()) +
                  " requests, the log " + std::to_string(logs[i].measured.size()));
    }
    out.push_back(std::move(run));
  }
  return out;
}

// The measured and simulated requests [begin, end) of a log, compared.
struct PartError {
  nlohmann::json compared;    // compare_runs(), for the report only (null during the search)
  std::size_t completed = 0;  // completed in the log
  std::size_t matched = 0;    // completed in both
  double log_ttft = 0;        // mean |ln(simulated / measured)| over the matched requests
  double log_tpot = 0;        // the same over those of more than one output token
};

PartError part_error(const ClientLog& log, const std::vector<RequestRecord>& sim, std::size_t begin, std::size_t end,
                     bool report) {
  PartError e;
  std::size_t ttfts = 0, tpots = 0;
  for (std::size_t i = begin; i < end; ++i) {
    const RequestMetrics r = request_metrics(log.measured[i]), s = request_metrics(sim[i]);
    if (std::isnan(r.latency)) continue;
    ++e.completed;
    if (std::isnan(s.latency)) continue;
    ++e.matched;
    if (r.ttft > 0 && s.ttft > 0) e.log_ttft += std::abs(std::log(s.ttft / r.ttft)), ++ttfts;
    if (r.tpot > 0 && s.tpot > 0) e.log_tpot += std::abs(std::log(s.tpot / r.tpot)), ++tpots;
  }
  if (ttfts) e.log_ttft /= double(ttfts);
  if (tpots) e.log_tpot /= double(tpots);
  if (report && e.completed > 0) {
    e.compared = compare_runs({std::vector<RequestRecord>(log.measured.begin() + begin, log.measured.begin() + end)},
                              std::vector<RequestRecord>(sim.begin() + begin, sim.begin() + end));
  }
  return e;
}

// The objective of one part: the TTFT and TPOT log-ratio errors of the matched requests (symmetric:
// a relative error such as MAPE would favour predictions too low), 1 each for an unmatched one.
double objective_of(const PartError& e) {
  if (e.completed == 0) return 0;
  const double unmatched = double(e.completed - e.matched) / double(e.completed);
  return (1 - unmatched) * (e.log_ttft + e.log_tpot) + 2 * unmatched;
}

nlohmann::json brief(const PartError& e) {
  nlohmann::json j = {{"requests", e.completed}, {"unmatched", e.completed - e.matched}};
  if (e.matched == 0) return j;
  for (const char* metric : {"latency_ms", "ttft_ms", "tpot_ms"}) {
    const auto& m = e.compared[metric];
    j[metric] = {{"per_request_mape", m["per_request_mape"]},
                 {"p50_error", m["p50"]["error"]},
                 {"p99_error", m["p99"]["error"]}};
  }
  return j;
}

std::size_t fitted_count(const ClientLog& log, double holdout_fraction) {
  const std::size_t n = log.measured.size();
  const auto held = static_cast<std::size_t>(std::floor(double(n) * holdout_fraction));
  return std::max<std::size_t>(1, n - held);
}


// The step model `t` of the way from `a` to `b`, coefficient by coefficient.
StepCoefficients blend(const StepCoefficients& a, const StepCoefficients& b, double t) {
  StepCoefficients c = a;
  auto mix = [t](double x, double y) { return x + t * (y - x); };
  c.step_s = mix(a.step_s, b.step_s);
  c.sequence_s = mix(a.sequence_s, b.sequence_s);
  c.linear_s_per_flop = mix(a.linear_s_per_flop, b.linear_s_per_flop);
  c.attention_s_per_flop = mix(a.attention_s_per_flop, b.attention_s_per_flop);
  c.weights_s_per_byte = mix(a.weights_s_per_byte, b.weights_s_per_byte);
  c.gemm_weights_s_per_byte = mix(a.gemm_weights_s_per_byte, b.gemm_weights_s_per_byte);
  c.kv_s_per_byte = mix(a.kv_s_per_byte, b.kv_s_per_byte);
  c.spill_s_per_byte = mix(a.spill_s_per_byte, b.spill_s_per_byte);
  return c;
}

// The spans of the fitted requests of `log` in the simulation `run`, appended to `spans` by the
// prior entry of each request's worker: its wait for the first token (simulated times: the steps
// that filled it; measured: the log's TTFT) and its decode.
void add_spans(const RunConfig& config, const Prior& base, double dispatch_us, const ClientLog& log, const SimRun& run,
               std::size_t fitted, std::vector<std::vector<MeasuredSpan>>& spans) {
  std::map<std::string, std::vector<const BatchRecord*>> by_worker;
  for (const LoggedStep& st : run.steps) by_worker[st.worker].push_back(&st.record);
  for (auto& [w, v] : by_worker) {
    std::sort(v.begin(), v.end(), [](const BatchRecord* x, const BatchRecord* y) { return x->start_us < y->start_us; });
  }
  // Per worker: its entry, and the entry's coefficients (communication terms included) and model terms.
  struct WorkerModel {
    std::size_t entry;
    StepCoefficients c;
    ModelTerms m;
  };
  std::map<std::string, WorkerModel> model_of;
  for (const auto& inst : config.cluster.instances) {
    for (std::size_t e = 0; e < base.entries.size(); ++e) {
      if (!base.entries[e].key.matches(inst)) continue;
      WorkerModel wm{e, base.entries[e].coefficients, ModelTerms::of(inst.model)};
      set_comm_terms(inst, wm.c);
      model_of.emplace(inst.name, wm);
    }
  }
  auto span = [&](const std::string& worker, TimeUs a, TimeUs b, double measured_s, bool waits) {
    const auto it = model_of.find(worker);
    if (it == model_of.end() || b <= a) return;
    const auto& [e, c, m] = it->second;
    MeasuredSpan sp;
    sp.seconds = measured_s;
    double busy_us = 0;
    const auto& steps = by_worker[worker];
    auto first = std::lower_bound(steps.begin(), steps.end(), a,
                                  [](const BatchRecord* r, TimeUs t) { return r->start_us < t; });
    if (first != steps.begin()) --first;  // the step running at `a`
    for (auto i = first; i != steps.end() && (*i)->start_us < b; ++i) {
      const BatchRecord& r = **i;
      const double overlap = double(std::min(b, r.end_us) - std::max(a, r.start_us));
      if (overlap <= 0 || r.end_us <= r.start_us) continue;
      SpanStep st;
      st.work = step_work(r.iteration);
      st.share = overlap / double(r.end_us - r.start_us);
      const double modeled = step_seconds(c, m, st.work);
      st.factor = modeled > 0 ? std::clamp(double(r.end_us - r.start_us) / 1e6 / modeled, 0.5, 4.0) : 1.0;
      sp.fixed_s += st.share * st.factor * (c.comm_s_per_token * st.work.tokens + c.comm_s);
      sp.steps.push_back(st);
      busy_us += overlap;
    }
    double idle_us = double(b - a) - busy_us;
    if (waits && dispatch_us > 0 && idle_us >= dispatch_us - 1) {
      idle_us = std::max(0.0, idle_us - dispatch_us);
      sp.extra = 1;
    }
    sp.fixed_s += idle_us / 1e6;
    spans[e].push_back(std::move(sp));
  };
  for (std::size_t id = 0; id < fitted; ++id) {
    const RequestRecord& real = log.measured[id];
    const RequestRecord& sim = run.requests[id];
    const bool done = real.ended && real.outcome == Outcome::kCompleted && sim.ended &&
                      sim.outcome == Outcome::kCompleted && real.first_token_us >= 0 && sim.first_token_us >= 0;
    if (!done) continue;
    span(run.workers[id], sim.arrival_us, sim.first_token_us, double(real.first_token_us - real.arrival_us) / 1e6, true);
    if (real.output_tokens > 1) {
      span(run.workers[id], sim.first_token_us, sim.end_us, double(real.end_us - real.first_token_us) / 1e6, false);
    }
  }
}

// The factors of a search point: logarithms of the three factors and of the dispatch delay's
// factor on `dispatch_us`.
ClientFitScales scales_of(double dispatch_us, const std::vector<double>& x) {
  return {std::exp(x[0]), std::exp(x[1]), std::exp(x[2]), dispatch_us * std::exp(x[3])};
}

}  // namespace

nlohmann::json calibrate_from_client_logs(const RunConfig& config, const std::vector<ClientLog>& logs,
                                          const nlohmann::json& prior_file, const ClientFitOptions& options) {
  if (logs.empty()) throw Error("calibrate: no client log");
  if (!(options.holdout_fraction >= 0 && options.holdout_fraction < 1)) {
    throw Error("calibrate: the held-out fraction must be in [0, 1)");
  }
  const Prior prior = prior_of(config, prior_file);
  const double dispatch_seed =
      config.sim.dispatch_us > 0 ? config.sim.dispatch_us : (prior.dispatch_us > 0 ? prior.dispatch_us : 100.0);
  const ScratchDir dir;
  const auto t0 = std::chrono::steady_clock::now();
  int evaluation = 0;

  // Every log's error, fitted requests first; the objective weights the logs by fitted requests.
  struct Evaluation {
    std::vector<PartError> fitted, held_out;
    std::vector<SimRun> runs;
    double objective = 0;
  };
  // `report`: also the held-out requests and compare_runs() of both parts (the prior's and the
  // fit's evaluations); the search needs only the fitted requests' objective.
  auto evaluate = [&](const Prior& base, const ClientFitScales& s, bool steps, bool report = false) {
    Evaluation ev;
    ev.runs = simulate_logs(config, logs, base, s, dir, options, steps);
    ++evaluation;
    double weight = 0;
    for (std::size_t i = 0; i < logs.size(); ++i) {
      const std::size_t n = logs[i].measured.size(), k = fitted_count(logs[i], options.holdout_fraction);
      ev.fitted.push_back(part_error(logs[i], ev.runs[i].requests, 0, k, report));
      if (report) ev.held_out.push_back(part_error(logs[i], ev.runs[i].requests, k, n, true));
      ev.objective += objective_of(ev.fitted.back()) * double(ev.fitted.back().completed);
      weight += double(ev.fitted.back().completed);
    }
    if (weight == 0) throw Error(logs.front().source + ": no completed request to fit to");
    ev.objective /= weight;
    if (!steps) ev.runs.clear();
    if (options.verbose) {
      std::cerr << "simulation " << evaluation << ": compute x" << s.compute << ", memory x" << s.memory
                << ", overhead x" << s.overhead << ", dispatch " << s.dispatch_us << " us: error " << ev.objective
                << "\n";
    }
    return ev;
  };
  const ClientFitScales unit{1, 1, 1, dispatch_seed};
  const Evaluation before = evaluate(prior, unit, options.span_rounds > 0, true);

  // Phase 1: the step model refitted to the requests' spans. Simulate; cut each fitted request's
  // TTFT and decode into the simulated steps that filled them; fit the coefficients (and the
  // dispatch delay) so that those steps add up to the measured times (cost_fit.h); simulate again
  // with them (the batches change with the step times), until the error stops falling.
  Prior base = prior;
  double base_dispatch = dispatch_seed;
  nlohmann::json span_rounds = nlohmann::json::array();
  Evaluation base_eval = before;
  double base_objective = before.objective;
  for (int round = 0; round < options.span_rounds && evaluation < options.max_evaluations; ++round) {
    bool batches = false;
    for (const SimRun& run : base_eval.runs) {
      for (const LoggedStep& st : run.steps) batches |= st.record.request_batch;
    }
    if (batches) break;  // request-level batches are not cut into steps: the search below fits them
    std::vector<std::vector<MeasuredSpan>> spans(base.entries.size());
    for (std::size_t i = 0; i < logs.size(); ++i) {
      add_spans(config, base, base_dispatch, logs[i], base_eval.runs[i], fitted_count(logs[i], options.holdout_fraction),
                spans);
    }
    Prior next = base;
    double dispatch_sum = 0, dispatch_weight = 0;
    try {
      for (std::size_t e = 0; e < base.entries.size(); ++e) {
        const InstanceSpec* inst = nullptr;
        for (const auto& in : config.cluster.instances) {
          if (base.entries[e].key.matches(in)) inst = &in;
        }
        if (inst == nullptr || spans[e].empty()) continue;
        StepCoefficients start = base.entries[e].coefficients;
        set_comm_terms(*inst, start);
        const SpanFitResult fit = fit_span_coefficients(spans[e], *inst, start);
        StepCoefficients c = fit.coefficients;
        c.comm_s = c.comm_s_per_token = 0;
        next.entries[e].coefficients = c;
        double waits = 0;
        for (const MeasuredSpan& sp : spans[e]) waits += sp.extra;
        if (waits > 0) dispatch_sum += fit.extra_s * 1e6 * waits, dispatch_weight += waits;
      }
    } catch (const Error&) {
      break;  // too few spans to fit: the search below works from what there is
    }
    const double next_dispatch = dispatch_weight > 0 ? std::max(1.0, dispatch_sum / dispatch_weight) : base_dispatch;
    // The refit assumed the current batches; with its step times they change. Take it, or half
    // the way to it, whichever lowers the error; stop when neither does.
    bool moved = false;
    for (double t : {1.0, 0.5}) {
      Prior candidate = base;
      for (std::size_t e = 0; e < base.entries.size(); ++e) {
        candidate.entries[e].coefficients = blend(base.entries[e].coefficients, next.entries[e].coefficients, t);
      }
      const double dispatch = base_dispatch + t * (next_dispatch - base_dispatch);
      Evaluation ev = evaluate(candidate, {1, 1, 1, dispatch}, true);
      span_rounds.push_back({{"step", t}, {"dispatch_us", dispatch}, {"objective", ev.objective}});
      if (ev.objective < base_objective - 1e-4) {
        base = candidate, base_dispatch = dispatch, base_objective = ev.objective, base_eval = std::move(ev);
        moved = true;
        break;
      }
    }
    if (!moved) break;
  }

  // Phase 2: a derivative-free search (Nelder-Mead) over factors on the compute, memory and
  // overhead terms of a model and the dispatch delay, from phase 1's model and from the prior (the
  // refit can settle where the step and per-byte terms trade off wrongly), half the remaining
  // simulations each; the better wins. The objective is piecewise flat (steps round to
  // microseconds, batches change by whole requests), where a simplex can collapse early: each
  // search restarts from its best point with a fresh simplex while that improves.
  struct Search {
    const Prior* model;
    double dispatch_us;
    double start_value;
    NelderMeadResult best;
    int restarts = 0;
  };
  std::vector<Search> searches;
  searches.push_back({&base, base_dispatch, base_objective, {}});
  if (base_objective < before.objective) searches.push_back({&prior, dispatch_seed, before.objective, {}});
  const int budget = options.max_evaluations - evaluation;
  for (std::size_t k = 0; k < searches.size(); ++k) {
    Search& sr = searches[k];
    const int until = evaluation + budget / int(searches.size());
    auto objective = [&](const std::vector<double>& x) {
      return evaluate(*sr.model, scales_of(sr.dispatch_us, x), false).objective;
    };
    NelderMeadOptions nm;
    nm.f_tolerance = 1e-4;
    nm.x_tolerance = 5e-3;
    sr.best.x = {0, 0, 0, 0};
    sr.best.value = sr.start_value;
    while (evaluation < until) {
      nm.max_evaluations = until - evaluation;
      const double step = std::log(2.0);
      const NelderMeadResult r = nelder_mead(objective, sr.best.x, {step, step, step, step}, nm);
      const bool improved = r.value < sr.best.value - nm.f_tolerance;
      if (r.value < sr.best.value) sr.best.x = r.x, sr.best.value = r.value;
      sr.best.converged = r.converged;
      if (!improved || !r.converged) break;
      ++sr.restarts;
    }
  }
  const Search& won = *std::min_element(searches.begin(), searches.end(), [](const Search& x, const Search& y) {
    return x.best.value < y.best.value;
  });
  const Prior& model = *won.model;
  const ClientFitScales fitted = scales_of(won.dispatch_us, won.best.x);
  const Evaluation after = evaluate(model, fitted, false, true);

  nlohmann::json per_log = nlohmann::json::array();
  for (std::size_t i = 0; i < logs.size(); ++i) {
    per_log.push_back({{"log", logs[i].source},
                       {"format", logs[i].format},
                       {"requests", logs[i].measured.size()},
                       {"left_out", logs[i].left_out},
                       {"fitted_requests", fitted_count(logs[i], options.holdout_fraction)},
                       {"prior", {{"fitted", brief(before.fitted[i])}, {"held_out", brief(before.held_out[i])}}},
                       {"fit", {{"fitted", brief(after.fitted[i])}, {"held_out", brief(after.held_out[i])}}}});
  }
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  nlohmann::json report = {
      {"method", "simulator in the loop: the step model refitted to the simulated steps that fill each request's "
                 "TTFT and decode (non-negative least squares), then Nelder-Mead over factors on its compute, memory "
                 "and overhead terms and the dispatch delay; objective: per-request TTFT + TPOT mean absolute "
                 "percentage error"},
      {"prior", prior.name},
      {"span_rounds", span_rounds},
      {"scales", {{"compute", fitted.compute}, {"memory", fitted.memory}, {"overhead", fitted.overhead}}},
      {"dispatch_us", fitted.dispatch_us},
      {"objective", {{"prior", before.objective}, {"span_fit", base_objective}, {"fit", after.objective}}},
      {"simulations", evaluation},
      {"search_from", won.model == &prior || base_objective >= before.objective ? "prior" : "span refit"},
      {"converged", won.best.converged},
      {"restarts", won.restarts},
      {"held_out_fraction", options.holdout_fraction},
      {"wall_s", wall_s},
      {"logs", per_log}};
  nlohmann::json meta = {{"engine", {{"dispatch_us", fitted.dispatch_us}, {"from", "client logs"}}},
                         {"client_fit", report}};
  return cost_table(model, fitted, meta);
}

}  // namespace twinfer::sim
