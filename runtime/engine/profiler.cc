#include "runtime/engine/profiler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <utility>

#include <unistd.h>

#include "core/error.h"
#include "runtime/engine/embedded_runtime.h"
#include "runtime/engine/steady_clock.h"
#include "runtime/engine/worker_engine.h"
#include "runtime/engine/worker_parts.h"
#include "serving/calibration.h"
#include "serving/fidelity.h"
#include "serving/run_policies.h"

namespace twinfer::runtime {
namespace {

// The batcher's limits the probes are sized by.
struct Limits {
  int max_seqs = 256;
  std::int64_t kv_tokens = 0;  // 0: the batcher tracks no KV memory
  int max_context = 4096;
};

Limits limits_of(const RunConfig& config, const InstanceSpec& inst) {
  Limits l;
  if (config.batcher.is_object()) {
    l.max_seqs = config.batcher.value("max_num_seqs", l.max_seqs);
    const std::int64_t blocks = config.batcher.value("kv_blocks", std::int64_t{0});
    l.kv_tokens = blocks * config.batcher.value("block_tokens", 16);
  }
  l.max_context = inst.model.max_context;
  return l;
}

// Steps of identical shape across repeats: how much their durations spread.
nlohmann::json repeat_spread(const std::vector<std::vector<LoggedStep>>& repeats) {
  using Shape = std::tuple<std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t>;
  std::map<Shape, std::vector<std::pair<int, double>>> groups;
  for (std::size_t r = 0; r < repeats.size(); ++r) {
    for (const LoggedStep& s : repeats[r]) {
      const IterationShape& i = s.record.iteration;
      groups[{i.prefill_seqs, i.prefill_tokens, i.prefill_prior_tokens, i.prefill_attn_pairs, i.decode_seqs,
              i.decode_context_tokens}]
          .push_back({int(r), measured_step(s.record).seconds});
    }
  }
  std::vector<double> spreads;
  for (auto& [shape, times] : groups) {
    std::set<int> from;
    for (const auto& t : times) from.insert(t.first);
    if (from.size() < 2) continue;
    double mean = 0;
    for (const auto& t : times) mean += t.second;
    mean /= double(times.size());
    double var = 0;
    for (const auto& t : times) var += (t.second - mean) * (t.second - mean);
    spreads.push_back(std::sqrt(var / double(times.size() - 1)) / mean);
  }
  if (spreads.empty()) return {{"shapes", 0}};
  std::sort(spreads.begin(), spreads.end());
  return {{"shapes", spreads.size()},
          {"median_cv", spreads[spreads.size() / 2]},
          {"p90_cv", spreads[std::min(spreads.size() - 1, spreads.size() * 9 / 10)]},
          {"note", "coefficient of variation of the durations of steps of one shape seen in several repeats"}};
}

}  // namespace

std::vector<ProbeBurst> probe_bursts(const RunConfig& config, const InstanceSpec& inst, const ProbeOptions& options) {
  const Limits l = limits_of(config, inst);
  const int d = std::max(2, options.decode_tokens);
  const int longest = std::max(1, l.max_context - d);  // the longest prompt that leaves room for d outputs
  std::vector<ProbeBurst> bursts;
  bursts.push_back(ProbeBurst{4, std::max(1, std::min(64, longest / 2)), std::min(8, d), 0, {}});  // warm-up: not kept
  std::vector<int> sizes;
  for (int n = 1; n < l.max_seqs; n *= 2) sizes.push_back(n);
  sizes.push_back(l.max_seqs);
  for (int n : sizes) {
    // One sequence at contexts across the whole range (the commonest decode of light load); larger
    // batches at short, medium and the longest contexts their KV cache holds.
    const std::vector<int> wanted = n == 1 ? std::vector<int>{16, longest / 16, longest / 8, longest / 4, longest / 2,
                                                              3 * longest / 4, longest}
                                           : std::vector<int>{16, longest / 4, longest};
    std::set<int> prompts;
    for (int wanted_prompt : wanted) {
      const int p = std::clamp(wanted_prompt, 1, longest);
      const int cap = l.kv_tokens > 0 ? int(std::min<std::int64_t>(p, l.kv_tokens / n - d)) : p;
      if (cap >= 1) prompts.insert(cap);
    }
    for (int p : prompts) bursts.push_back(ProbeBurst{n, p, d, 0, {}});
  }
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<int> prompt(std::min(16, longest / 4), std::max(1, l.max_context / 4));
  ProbeBurst mixed;
  mixed.count = options.mixed_requests;
  mixed.gap_us = 2000;  // they join batches already running
  for (int k = 0; k < mixed.count; ++k) {
    const int p = prompt(rng);
    // Every request fits the model's context: prompt plus output at most max_context.
    std::uniform_int_distribution<int> output(1, std::max(1, std::min(128, l.max_context - p)));
    mixed.lengths.push_back({p, output(rng)});
  }
  bursts.push_back(mixed);
  return bursts;
}

namespace {

// Where the instances of one host profiled at once wait for each other after their warm-up, so that
// their measured bursts run together (the contention they are there to show) however long each took
// to load its model. Each instance passes exactly once: it arrives, or leaves when it failed first.
class StartLine {
 public:
  explicit StartLine(std::size_t runners) : missing_(runners) {}
  void arrive() {
    std::unique_lock<std::mutex> lock(mu_);
    if (--missing_ == 0) cv_.notify_all();
    cv_.wait(lock, [&] { return missing_ == 0; });
  }
  void leave() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--missing_ == 0) cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t missing_;
};

// Feeds one worker engine the bursts, each when the previous one has ended, and returns the steps
// of all but the first (the warm-up). With a start line, waits there after the warm-up (and leaves
// it, whatever happens, if it never gets there).
std::vector<BatchRecord> run_bursts(const RunConfig& config, const InstanceSpec& inst,
                                    const std::vector<ProbeBurst>& bursts, const ProbeOptions& options,
                                    const Clock& clock, int core, StartLine* start_line = nullptr) {
  struct Pass {
    StartLine* line;
    ~Pass() {
      if (line != nullptr) line->leave();
    }
  } pass{start_line};
  RunPolicies policies = make_run_policies(config, options.seed);
  std::mutex mu;
  std::condition_variable cv;
  std::int64_t ended = 0;
  bool keep = false;
  std::vector<BatchRecord> steps;
  std::string failure;
  WorkerCallbacks callbacks;
  callbacks.on_end = [&](int, const Finished& f, TimeUs) {
    std::lock_guard<std::mutex> lock(mu);
    if (f.outcome != Outcome::kCompleted && failure.empty()) {
      failure = "request of " + std::to_string(f.seq.request.input_tokens) + " + " +
                std::to_string(f.seq.request.output_tokens) + " tokens ended " + outcome_name(f.outcome) + ": " +
                f.reason;
    }
    ++ended;
    cv.notify_all();
  };
  callbacks.on_batch = [&](const BatchRecord& b) {
    std::lock_guard<std::mutex> lock(mu);
    if (keep) steps.push_back(b);
  };
  callbacks.on_failed = [&](int, const std::string& reason) {
    std::lock_guard<std::mutex> lock(mu);
    if (failure.empty()) failure = reason;
    cv.notify_all();
  };
  WorkerEngine engine(make_worker_parts(config, inst, backend_device(options.device, inst), *policies.admission, *policies.cost, clock, options.seed),
                      std::move(callbacks));
  engine.start(core);
  RequestId next_id = 0;
  std::int64_t submitted = 0;
  for (std::size_t b = 0; b < bursts.size(); ++b) {
    const ProbeBurst& burst = bursts[b];
    for (int k = 0; k < burst.count; ++k) {
      if (k > 0 && burst.gap_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(burst.gap_us));
      Request r;
      r.id = next_id++;
      r.arrival_us = clock.now_us();
      r.input_tokens = burst.lengths.empty() ? burst.input_tokens : burst.lengths[std::size_t(k)].first;
      r.output_tokens = burst.lengths.empty() ? burst.output_tokens : burst.lengths[std::size_t(k)].second;
      engine.submit(r);
      ++submitted;
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return ended == submitted || !failure.empty(); });
    if (!failure.empty()) break;
    keep = true;  // from the burst after the warm-up on
    if (b == 0 && pass.line != nullptr) {
      lock.unlock();
      std::exchange(pass.line, nullptr)->arrive();
    }
  }
  engine.stop();
  if (!failure.empty()) throw Error("profile: " + inst.name + ": a probe request failed: " + failure);
  return steps;
}

}  // namespace

namespace {

void keep_steps(const std::string& dir, const std::vector<LoggedStep>& steps, const std::vector<std::string>& workers) {
  make_output_dir(dir);
  const std::vector<Request> no_requests;
  Recorder log(no_requests, workers, SloSpec{}, false, true);
  for (const LoggedStep& s : steps) log.batch(s.record);
  log.write_steps_csv(dir + "/steps.csv");
}

std::string safe_name(std::string name) {
  std::replace(name.begin(), name.end(), '/', '_');
  return name;
}

}  // namespace

std::vector<LoggedStep> run_probes(const RunConfig& config_in, const ProbeOptions& options,
                                   std::vector<std::vector<LoggedStep>>* repeats_out) {
  RunConfig config = config_in;
  config.admission = "accept_all";
  std::vector<LoggedStep> all;
  std::set<std::tuple<std::string, std::string, int>> done;
  int run = 0;
  for (const InstanceSpec& inst : config.cluster.instances) {
    if (!done.insert({inst.device.name, inst.model.name, inst.tp()}).second) continue;
    const std::vector<ProbeBurst> bursts = probe_bursts(config, inst, options);
    std::size_t requests = 0;
    for (const ProbeBurst& b : bursts) requests += std::size_t(b.count);
    for (int rep = 0; rep < options.repeats; ++rep) {
      if (options.verbose) {
        std::fprintf(stderr, "profiling %s (%s / %s, tp %d) on %s alone: repeat %d of %d, %zu bursts, %zu requests\n",
                     inst.name.c_str(), inst.device.name.c_str(), inst.model.name.c_str(), inst.tp(),
                     options.device.c_str(), rep + 1, options.repeats, bursts.size(), requests);
      }
      SteadyClock clock;
      std::vector<LoggedStep> steps;
      for (BatchRecord& b : run_bursts(config, inst, bursts, options, clock, options.pin_threads ? 0 : -1)) {
        b.worker = 0;
        steps.push_back(LoggedStep{inst.name, b, run});
      }
      ++run;
      if (!options.steps_dir.empty()) {
        keep_steps(options.steps_dir + "/" + safe_name(inst.name) + "/repeat" + std::to_string(rep + 1), steps,
                   {inst.name});
      }
      all.insert(all.end(), steps.begin(), steps.end());
      if (repeats_out != nullptr) repeats_out->push_back(std::move(steps));
    }
    // Then every instance of its host at once, each on its own bursts: the contention.
    std::vector<const InstanceSpec*> host;
    for (const InstanceSpec& other : config.cluster.instances) {
      if (other.host == inst.host) host.push_back(&other);
    }
    if (host.size() < 2 || !options.concurrent) continue;
    if (options.verbose) {
      std::fprintf(stderr, "profiling the %zu instances of host %s at once\n", host.size(), inst.host.c_str());
    }
    SteadyClock clock;
    StartLine start_line(host.size());
    std::vector<std::vector<BatchRecord>> records(host.size());
    std::vector<std::string> errors(host.size());
    std::vector<std::vector<ProbeBurst>> host_bursts;
    for (const InstanceSpec* other : host) host_bursts.push_back(probe_bursts(config, *other, options));
    std::vector<std::thread> threads;
    for (std::size_t h = 0; h < host.size(); ++h) {
      threads.emplace_back([&, h] {
        try {
          records[h] = run_bursts(config, *host[h], host_bursts[h], options, clock, options.pin_threads ? int(h) : -1,
                                  &start_line);
        } catch (const std::exception& e) {
          errors[h] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    std::vector<LoggedStep> steps;
    std::vector<std::string> names;
    for (std::size_t h = 0; h < host.size(); ++h) {
      if (!errors[h].empty()) throw Error(errors[h]);
      names.push_back(host[h]->name);
      for (BatchRecord& b : records[h]) {
        b.worker = int(h);
        steps.push_back(LoggedStep{host[h]->name, b, run});
      }
    }
    ++run;
    if (!options.steps_dir.empty()) keep_steps(options.steps_dir + "/" + safe_name(inst.host) + "_concurrent", steps, names);
    all.insert(all.end(), steps.begin(), steps.end());
  }
  return all;
}

nlohmann::json measure_dispatch(const RunConfig& config_in, const ProbeOptions& options) {
  RunConfig config = config_in;
  config.sim.step_log = true;
  config.sim.timeline = false;
  Trace trace;
  trace.source = "dispatch probe";
  const int n = 10 * static_cast<int>(config.cluster.instances.size());
  for (int i = 0; i < n; ++i) {
    Request r;
    r.id = static_cast<RequestId>(i);
    r.arrival_us = TimeUs(i) * 30'000;  // far enough apart that each finds its worker idle
    r.input_tokens = 16;
    r.output_tokens = 2;
    trace.requests.push_back(r);
  }
  EmbeddedRunOptions run;
  run.seed = options.seed;
  run.device = options.device;
  run.pin_threads = options.pin_threads;
  const std::string dir =
      options.steps_dir.empty()
          ? (std::filesystem::temp_directory_path() / ("twinfer-dispatch-" + std::to_string(::getpid()))).string()
          : options.steps_dir + "/dispatch";
  run.out_dir = dir;
  run_embedded(config, trace, run);
  std::vector<std::string> workers;
  const auto records = read_requests_csv(dir + "/requests.csv", &workers);
  const auto steps = read_step_log(dir + "/steps.csv");
  if (options.steps_dir.empty()) std::filesystem::remove_all(dir);
  return dispatch_summary(dispatch_delays_us(records, workers, steps));
}

nlohmann::json profile_cost_model(const RunConfig& config, const ProbeOptions& options) {
  std::vector<std::vector<LoggedStep>> repeats;
  const std::vector<LoggedStep> steps = run_probes(config, options, &repeats);
  if (options.verbose) std::fprintf(stderr, "measuring the runtime's dispatch delay\n");
  nlohmann::json meta = {{"device", options.device},
                         {"measured_by", "twinfer profile: probe workloads through the worker engine loop"},
                         {"repeats", options.repeats}};
  const nlohmann::json engine = measure_dispatch(config, options);
  if (!engine.is_null()) meta["engine"] = engine;
  nlohmann::json table = calibrate_cost_model(config, steps, "probe runs", FitOptions(), meta);
  for (auto& entry : table["entries"]) {
    std::vector<std::vector<LoggedStep>> mine;
    for (const auto& r : repeats) {
      if (r.empty()) continue;
      for (const InstanceSpec& inst : config.cluster.instances) {
        if (inst.name == r.front().worker && inst.device.name == entry["device"] && inst.model.name == entry["model"] &&
            inst.tp() == entry["tp"]) {
          mine.push_back(r);
        }
      }
    }
    entry["fit"]["repeat_spread"] = repeat_spread(mine);
  }
  return table;
}

}  // namespace twinfer::runtime
