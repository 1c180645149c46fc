#include "runtime/engine/embedded_runtime.h"

#include <memory>
#include <mutex>

#include "core/error.h"
#include "serving/recorder.h"
#include "serving/run_policies.h"
#include "serving/splits/version_choice.h"
#include "runtime/engine/cpu_affinity.h"
#include "runtime/engine/embedded_router.h"
#include "runtime/engine/steady_clock.h"
#include "runtime/engine/worker_engine.h"
#include "runtime/engine/worker_parts.h"

namespace twinfer::runtime {
namespace {

std::string batcher_name(const RunConfig& config) {
  return config.batcher.is_string() ? config.batcher.get<std::string>() : config.batcher.value("name", "");
}

}  // namespace

nlohmann::json run_embedded(const RunConfig& config, const Trace& input, const EmbeddedRunOptions& options) {
  Trace scaled;
  if (options.rate_scale != 1.0) scaled = scale_trace(input, options.rate_scale);
  const Trace& trace = options.rate_scale != 1.0 ? scaled : input;

  RunPolicies policies = make_run_policies(config, options.seed);
  std::vector<std::string> names;
  for (const auto& inst : config.cluster.instances) names.push_back(inst.name);
  Recorder recorder(trace.requests, names, config.workload.slo, config.sim.timeline, config.sim.step_log);
  std::mutex recorder_mu;
  SteadyClock clock;

  RouterParts parts;
  parts.config = &config;
  parts.trace = &trace;
  parts.policies = &policies;
  parts.faults = &options.faults;
  parts.clock = &clock;
  parts.recorder = &recorder;
  parts.recorder_mu = &recorder_mu;
  parts.seed = options.seed;
  parts.make_worker = [&](int w, WorkerCallbacks callbacks) {
    const InstanceSpec& inst = config.cluster.instances[std::size_t(w)];
    WorkerParts wp = make_worker_parts(config, inst, backend_device(options.device, inst), *policies.admission, *policies.cost,
                                       clock, options.seed);
    return std::make_unique<WorkerEngine>(std::move(wp), std::move(callbacks));
  };
  if (options.pin_threads) parts.cores = worker_cores(static_cast<int>(names.size()), numa_nodes());

  EmbeddedRouter router(std::move(parts));
  router.run();
  const double wall_s = s_from_us(clock.now_us());
  recorder.check_all_ended();
  nlohmann::json summary = recorder.summary();
  summary.update(router.elastic_json(summary["requests"]["completed"].get<std::int64_t>()));
  nlohmann::json models = per_model_summary(recorder, config.cluster);
  if (!models.is_null()) summary["models"] = std::move(models);
  summary["run"] = {{"wall_s", wall_s}, {"steps", router.steps()}, {"device", options.device},
                    {"loads", router.loads_json()}};
  summary["policies"] = {{"router", policies.router->name()},
                         {"admission", policies.admission->name()},
                         {"cost_model", policies.cost->name()},
                         {"batcher", batcher_name(config)}};
  if (!options.faults.empty() || !router.health_changes().empty()) {
    summary["faults"] = router.faults_json(options.faults, recorder.worker_names());
  }
  if (options.records_out != nullptr) *options.records_out = recorder.records();
  if (!options.out_dir.empty()) write_run_outputs(recorder, summary, options.out_dir, config.sim.timeline);
  // A policy that threw on a worker thread is an error of the run, as it is in the simulator.
  const std::string policy_error = router.policy_error();
  if (!policy_error.empty()) throw Error(policy_error);
  return summary;
}

}  // namespace twinfer::runtime
