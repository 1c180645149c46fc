#include "runtime/engine/embedded_runtime.h"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "policies/error.h"
#include "policies/recorder.h"
#include "policies/run_policies.h"
#include "runtime/engine/cpu_affinity.h"
#include "runtime/engine/steady_clock.h"
#include "runtime/engine/worker_engine.h"
#include "runtime/engine/worker_parts.h"
#include "runtime/model/transformer_config.h"

namespace twinfer::runtime {
namespace {

std::string device_of(const RunOptions& options, const InstanceSpec& instance) {
  if (options.device == "cuda") return "cuda:" + std::to_string(instance.gpus.empty() ? 0 : instance.gpus[0]);
  return options.device;
}

}  // namespace

nlohmann::json run_embedded(const RunConfig& config, const Trace& input, const RunOptions& options) {
  Trace scaled;
  if (options.rate_scale != 1.0) scaled = scale_trace(input, options.rate_scale);
  const Trace& trace = options.rate_scale != 1.0 ? scaled : input;

  RunPolicies policies = make_run_policies(config, options.seed);
  auto& cost = policies.cost;
  auto& admission = policies.admission;
  auto& router = policies.router;

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
    WorkerParts parts = make_worker_parts(config, inst, device_of(options, inst), *admission, *cost, clock, options.seed);
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
    RouteDecision rd = ad.admitted ? route_checked(*router, r, view) : RouteDecision::reject(ad.reason);
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
