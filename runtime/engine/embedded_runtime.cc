#include "runtime/engine/embedded_runtime.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "policies/error.h"
#include "policies/recorder.h"
#include "policies/registry.h"
#include "runtime/engine/cpu_affinity.h"
#include "runtime/engine/steady_clock.h"
#include "runtime/engine/worker_engine.h"
#include "runtime/model/transformer_config.h"

namespace twinfer::runtime {
namespace {

BackendLimits limits_for(const Batcher& batcher, const TransformerConfig& model) {
  BackendLimits limits;
  KvCapacity kv = batcher.kv_capacity();
  if (kv.blocks_total > 0) {
    limits.kv_blocks = kv.blocks_total;
    limits.block_tokens = kv.block_tokens;
  } else {
    // Request-level batches hold their sequences' caches only while they run.
    limits.kv_blocks = 4096;
  }
  const double pool_bytes = double(limits.kv_blocks) * limits.block_tokens * double(model.kv_bytes_per_token());
  if (pool_bytes > 8e9) {
    throw Error("the KV cache of " + std::to_string(limits.kv_blocks) + " blocks needs " +
                std::to_string(pool_bytes / 1e9) + " GB for this model; set policies.batcher.kv_blocks");
  }
  return limits;
}

std::string device_of(const RunOptions& options, const InstanceSpec& instance) {
  if (options.device == "cuda") return "cuda:" + std::to_string(instance.gpus.empty() ? 0 : instance.gpus[0]);
  return options.device;
}

}  // namespace

nlohmann::json run_embedded(const RunConfig& config, const Trace& input, const RunOptions& options) {
  Trace scaled;
  if (options.rate_scale != 1.0) scaled = scale_trace(input, options.rate_scale);
  const Trace& trace = options.rate_scale != 1.0 ? scaled : input;

  PolicyContext ctx;
  ctx.seed = options.seed;
  ctx.base_dir = config.base_dir;
  auto cost = cost_model_registry().make(config.cost_model, ctx, "policies.cost_model");
  ctx.cost = cost.get();
  auto admission = admission_registry().make(config.admission, ctx, "policies.admission");
  auto router = router_registry().make(config.router, ctx, "policies.router");

  std::vector<std::string> names;
  for (const auto& inst : config.cluster.instances) names.push_back(inst.name);
  Recorder recorder(trace.requests, names, config.workload.slo, config.sim.timeline);
  std::mutex recorder_mu;
  std::condition_variable all_ended;
  std::size_t ended = 0;
  std::int64_t steps = 0;

  SteadyClock clock;
  WorkerCallbacks callbacks;
  callbacks.on_end = [&](int worker, const Finished& f, TimeUs end_us) {
    std::lock_guard<std::mutex> lock(recorder_mu);
    recorder.finished(f.seq, worker, f.outcome, f.reason, f.seq.first_token_us, end_us);
    if (++ended == trace.requests.size()) all_ended.notify_all();
  };
  callbacks.on_batch = [&](const BatchRecord& b) {
    std::lock_guard<std::mutex> lock(recorder_mu);
    recorder.batch(b);
    ++steps;
  };

  std::vector<std::unique_ptr<WorkerEngine>> workers;
  for (const auto& inst : config.cluster.instances) {
    PolicyContext wctx = ctx;
    wctx.instance = &inst;
    wctx.seed = options.seed + 1 + static_cast<std::uint64_t>(inst.index);
    WorkerParts parts;
    parts.index = inst.index;
    parts.instance = &inst;
    parts.batcher = batcher_registry().make(config.batcher, wctx, "policies.batcher");
    TransformerConfig model = TransformerConfig::from_model(inst.model, options.seed);
    parts.backend = make_backend(device_of(options, inst), model, limits_for(*parts.batcher, model));
    parts.admission = admission.get();
    parts.cost = cost.get();
    parts.clock = &clock;
    parts.vocab = model.vocab;
    workers.push_back(std::make_unique<WorkerEngine>(std::move(parts), callbacks));
  }
  // Time zero of the run is now, after the weights were built: trace times and run times coincide.
  clock.reset();
  std::vector<int> cores = worker_cores(static_cast<int>(workers.size()), numa_nodes());
  for (std::size_t i = 0; i < workers.size(); ++i) workers[i]->start(options.pin_threads ? cores[i] : -1);

  // Open loop: each request leaves at its trace time, whatever the workers are doing.
  const TimeUs t0 = 0;
  std::vector<WorkerView> views(workers.size());
  for (const Request& r : trace.requests) {
    std::this_thread::sleep_until(clock.at(t0 + r.arrival_us));
    for (std::size_t i = 0; i < workers.size(); ++i) views[i] = workers[i]->view();
    ClusterView view{clock.now_us(), &views};
    AdmissionDecision ad = admission->admit(r, view);
    RouteDecision rd = ad.admitted ? router->route(r, view) : RouteDecision::reject(ad.reason);
    if (rd.rejected()) {
      std::lock_guard<std::mutex> lock(recorder_mu);
      recorder.reject(r.id, view.now_us, rd.reason);
      if (++ended == trace.requests.size()) all_ended.notify_all();
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(recorder_mu);
      recorder.routed(r.id, rd.worker);
    }
    workers[rd.worker]->submit(r);
  }
  {
    std::unique_lock<std::mutex> lock(recorder_mu);
    all_ended.wait(lock, [&] { return ended == trace.requests.size(); });
  }
  for (auto& w : workers) w->stop();
  const double wall_s = s_from_us(clock.now_us() - t0);
  recorder.check_all_ended();
  nlohmann::json summary = recorder.summary();
  summary["run"] = {{"wall_s", wall_s}, {"steps", steps}, {"device", options.device}};
  summary["policies"] = {{"router", router->name()}, {"admission", admission->name()}, {"cost_model", cost->name()},
                         {"batcher", nlohmann::json(config.batcher).is_string() ? config.batcher.get<std::string>()
                                                                                : config.batcher.value("name", "")}};
  if (!options.out_dir.empty()) write_run_outputs(recorder, summary, options.out_dir, config.sim.timeline);
  return summary;
}

}  // namespace twinfer::runtime
