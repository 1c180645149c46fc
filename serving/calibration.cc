#include "serving/calibration.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <tuple>

#include "core/error.h"
#include "policies/cost/calibrated_cost_model.h"
#include "serving/fidelity.h"

namespace twinfer {

MeasuredStep measured_step(const BatchRecord& record) {
  MeasuredStep s;
  s.work = step_work(record.iteration);
  s.seconds = double(record.end_us - record.start_us + record.engine_us) * 1e-6;
  return s;
}

std::vector<double> host_overlaps(const RunConfig& config, const std::vector<LoggedStep>& steps) {
  std::map<std::string, const InstanceSpec*> by_name;
  std::map<std::string, int> on_host;
  for (const InstanceSpec& inst : config.cluster.instances) {
    by_name[inst.name] = &inst;
    ++on_host[inst.host];
  }
  // Each worker's steps, sorted by start (a worker runs one step at a time).
  std::map<std::pair<int, std::string>, std::vector<std::pair<TimeUs, TimeUs>>> busy;  // (run, worker)
  for (const LoggedStep& s : steps) busy[{s.run, s.worker}].push_back({s.record.start_us, s.record.end_us});
  for (auto& [worker, spans] : busy) std::sort(spans.begin(), spans.end());
  std::vector<double> overlap(steps.size(), 0);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    auto it = by_name.find(steps[i].worker);
    if (it == by_name.end()) continue;
    const int others = on_host[it->second->host] - 1;
    const TimeUs start = steps[i].record.start_us, end = steps[i].record.end_us;
    if (others <= 0 || end <= start) continue;
    double sum = 0;
    for (const auto& [key, spans] : busy) {
      if (key.first != steps[i].run || key.second == steps[i].worker) continue;
      auto other = by_name.find(key.second);
      if (other == by_name.end() || other->second->host != it->second->host) continue;
      // The first span that ends after `start`, then every one that starts before `end`.
      auto k = std::lower_bound(spans.begin(), spans.end(), start,
                                [](const std::pair<TimeUs, TimeUs>& span, TimeUs t) { return span.second <= t; });
      for (; k != spans.end() && k->first < end; ++k) sum += double(std::min(end, k->second) - std::max(start, k->first));
    }
    overlap[i] = std::min(1.0, sum / (double(end - start) * others));
  }
  return overlap;
}

nlohmann::json calibrate_cost_model(const RunConfig& config, const std::vector<LoggedStep>& steps,
                                    const std::string& source, const FitOptions& options,
                                    const nlohmann::json& meta) {
  using Key = std::tuple<std::string, std::string, int>;
  std::map<std::string, const InstanceSpec*> by_name;
  for (const InstanceSpec& inst : config.cluster.instances) by_name[inst.name] = &inst;
  struct Group {
    const InstanceSpec* instance = nullptr;
    std::vector<MeasuredStep> steps;
    std::int64_t request_batches = 0;
  };
  std::map<Key, Group> groups;
  std::vector<Key> order;
  const std::vector<double> overlap = host_overlaps(config, steps);
  for (std::size_t i = 0; i < steps.size(); ++i) {
    const LoggedStep& s = steps[i];
    auto it = by_name.find(s.worker);
    if (it == by_name.end()) {
      throw Error(source + ": worker '" + s.worker + "' is not an instance of " +
                  (config.source.empty() ? "the config" : config.source));
    }
    const InstanceSpec& inst = *it->second;
    const Key key{inst.device.name, inst.model.name, inst.tp()};
    auto [g, added] = groups.try_emplace(key);
    if (added) {
      g->second.instance = &inst;
      order.push_back(key);
    }
    if (s.record.request_batch) {
      ++g->second.request_batches;
    } else if (s.record.end_us > s.record.start_us) {
      g->second.steps.push_back(measured_step(s.record));
      g->second.steps.back().overlap = overlap[i];
    }
  }
  if (groups.empty()) throw Error(source + ": no steps to fit (was the run made with sim.step_log on?)");
  nlohmann::json entries = nlohmann::json::array();
  for (const Key& key : order) {
    const Group& g = groups.at(key);
    if (g.steps.empty() && g.request_batches > 0) {
      throw Error(source + ": instance '" + g.instance->name + "' ran only request-level batches (" +
                  std::to_string(g.request_batches) +
                  "), whose steps are not logged one by one; the calibrated model is fitted to iterations: "
                  "measure with a continuous batcher (--set policies.batcher=continuous)");
    }
    const FitResult fit = fit_step_coefficients(g.steps, *g.instance, options);
    nlohmann::json report = fit.to_json();
    report["request_batches_not_fitted"] = g.request_batches;
    entries.push_back({{"device", std::get<0>(key)},
                       {"model", std::get<1>(key)},
                       {"tp", std::get<2>(key)},
                       {"coefficients", coefficients_json(fit.coefficients)},
                       {"fit", report}});
  }
  nlohmann::json m = meta;
  m["fitted_from"] = source;
  m["method"] = "non-negative least squares of relative step-time errors";
  if (options.holdout_every > 0) m["held_out"] = "every " + std::to_string(options.holdout_every) + "th step";
  return {{"format", "twinfer-cost-v1"}, {"meta", m}, {"entries", entries}};
}

std::vector<double> dispatch_delays_us(const std::vector<RequestRecord>& requests,
                                       const std::vector<std::string>& workers, const std::vector<LoggedStep>& steps) {
  std::map<std::string, std::vector<std::pair<TimeUs, TimeUs>>> busy;
  for (const LoggedStep& s : steps) busy[s.worker].push_back({s.record.start_us, s.record.end_us});
  for (auto& [worker, spans] : busy) std::sort(spans.begin(), spans.end());
  std::vector<double> delays;
  for (std::size_t i = 0; i < requests.size() && i < workers.size(); ++i) {
    const RequestRecord& r = requests[i];
    if (r.start_us < 0 || workers[i].empty()) continue;
    const auto& spans = busy[workers[i]];
    // The last step that started at or before the arrival: running then?
    auto k = std::upper_bound(spans.begin(), spans.end(), std::make_pair(r.arrival_us, kNever));
    if (k != spans.begin() && std::prev(k)->second > r.arrival_us) continue;
    delays.push_back(double(r.start_us - r.arrival_us));
  }
  return delays;
}

nlohmann::json dispatch_summary(std::vector<double> delays) {
  if (delays.empty()) return nullptr;
  std::sort(delays.begin(), delays.end());
  return {{"dispatch_us", percentile(delays, 50)}, {"p90_us", percentile(delays, 90)}, {"requests", delays.size()},
          {"note", "start - arrival of requests that found their worker idle: the runtime's own handoff"}};
}

nlohmann::json calibrate_cost_model(const RunConfig& config, const std::vector<std::string>& step_logs,
                                    const FitOptions& options, const nlohmann::json& meta) {
  std::vector<LoggedStep> all;
  std::string source;
  std::vector<double> delays;
  for (const std::string& given : step_logs) {
    const std::string path =
        std::filesystem::is_directory(given) ? (std::filesystem::path(given) / "steps.csv").string() : given;
    auto steps = read_step_log(path);
    for (LoggedStep& s : steps) s.run = static_cast<int>(&given - step_logs.data());
    const auto requests_csv = std::filesystem::path(path).parent_path() / "requests.csv";
    if (std::filesystem::is_directory(given) && std::filesystem::exists(requests_csv)) {
      std::vector<std::string> workers;
      const auto records = read_requests_csv(requests_csv.string(), &workers);
      const auto d = dispatch_delays_us(records, workers, steps);
      delays.insert(delays.end(), d.begin(), d.end());
    }
    all.insert(all.end(), std::make_move_iterator(steps.begin()), std::make_move_iterator(steps.end()));
    source += (source.empty() ? "" : ", ") + path;
  }
  if (step_logs.empty()) throw Error("calibrate: no step logs given");
  nlohmann::json m = meta;
  const nlohmann::json engine = dispatch_summary(delays);
  if (!engine.is_null()) m["engine"] = engine;
  return calibrate_cost_model(config, all, source, options, m);
}

}  // namespace twinfer
