#include <fstream>
#include <iostream>

#include "core/error.h"
#include "core/json_file.h"
#include "serving/calibration.h"
#include "serving/client_log.h"
#include "sim/client_fit.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/table.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer calibrate --config C --steps PATH[,PATH...] --out cost.json [--holdout-every K]\n"
    "                         [--set key=value ...]\n"
    "       twinfer calibrate --config C --client-log PATH[,PATH...] --out cost.json [--cost PRIOR]\n"
    "                         [--holdout-fraction F] [--max-evals N] [--seed N] [--verbose] [--set key=value ...]\n"
    "\n"
    "Fits the calibrated cost model to the steps that runs logged: each PATH is a steps.csv, or a\n"
    "run's output folder holding one (make runs with --set sim.step_log=true). Workers are matched\n"
    "to the config's instances by name; one entry is fitted per (device, model, tensor\n"
    "parallelism): per-step and per-sequence overheads, linear-layer and attention FLOP times,\n"
    "weights and KV-cache byte times (non-negative least squares of relative errors). Every K-th\n"
    "step (default 5; 0: none) is held out and the fit's error on it reported. Use the file with\n"
    "  --set policies.cost_model.name=calibrated --set policies.cost_model.path=cost.json\n"
    "\n"
    "With --client-log, fits to what clients measured instead of steps: each PATH is the JSON that\n"
    "'vllm bench serve --save-result --save-detailed' wrote, or a twinfer requests.csv (or a run folder).\n"
    "The config describes the deployment that served it (cluster, batcher, router). The simulator\n"
    "replays each log's requests at their measured send times, and a Nelder-Mead search scales the\n"
    "prior step model (--cost PRIOR, a cost file; else the config's roofline or calibrated model):\n"
    "one factor on its compute terms, one on its memory terms, one on its overheads, and the dispatch\n"
    "delay (meta.engine.dispatch_us), until each request's simulated TTFT and TPOT match the log's\n"
    "(mean absolute percentage error). The last F of each log's requests (default 0.3) are held out\n"
    "and their error reported apart. --max-evals bounds the simulations (default 1000).\n";

void print_fit_table(const nlohmann::json& table) {
  Table t({"device", "model", "tp", "coefficient", "value"}, 4);
  for (const auto& e : table["entries"]) {
    const std::string tp = std::to_string(e["tp"].get<int>());
    for (const auto& [name, value] : e["coefficients"].items()) {
      t.add({e["device"], e["model"], tp, name, fmt_significant(value, 4)});
    }
    for (const char* part : {"train", "held_out"}) {
      if (!e["fit"].contains(part)) continue;
      const auto& f = e["fit"][part];
      t.add({e["device"], e["model"], tp, std::string(part) + " steps", std::to_string(f["steps"].get<long long>())});
      t.add({e["device"], e["model"], tp, std::string(part) + " step error mean %", fmt(f["mape"].get<double>() * 100, 1)});
      t.add({e["device"], e["model"], tp, std::string(part) + " step error p90 %", fmt(f["p90_ape"].get<double>() * 100, 1)});
      t.add({e["device"], e["model"], tp, std::string(part) + " total time error %",
             fmt(f["total_error"].get<double>() * 100, 2)});
    }
    if (e["fit"].contains("repeat_spread") && e["fit"]["repeat_spread"].contains("median_cv")) {
      t.add({e["device"], e["model"], tp, "repeat spread (median CV) %",
             fmt(e["fit"]["repeat_spread"]["median_cv"].get<double>() * 100, 1)});
    }
  }
  t.print(std::cout);
  const nlohmann::json& engine = table["meta"].value("engine", nlohmann::json());
  if (engine.is_object()) {
    std::cout << "\ndispatch delay (the runtime's handoff of a request to an idle worker): median "
              << fmt(engine["dispatch_us"], 0) << " us over " << engine["requests"]
              << " requests; simulate it with --set sim.dispatch_us=" << fmt(engine["dispatch_us"], 0) << "\n";
  }
}

void print_client_fit(const nlohmann::json& table) {
  const auto& r = table["meta"]["client_fit"];
  std::cout << "prior: " << r["prior"].get<std::string>() << "\nfitted: compute x" << fmt_significant(r["scales"]["compute"], 4)
            << ", memory x" << fmt_significant(r["scales"]["memory"], 4) << ", overheads x"
            << fmt_significant(r["scales"]["overhead"], 4) << ", dispatch " << fmt(r["dispatch_us"], 0) << " us ("
            << r["simulations"] << " simulations, " << fmt(r["wall_s"], 1) << " s"
            << (r["converged"].get<bool>() ? "" : ", not converged: raise --max-evals") << ")\n\n";
  Table t({"log", "requests", "metric", "prior MAPE %", "fit MAPE %", "fit P50 err %", "fit P99 err %"}, 3);
  auto pct = [](const nlohmann::json& x) { return x.is_number() ? fmt(x.get<double>() * 100, 1) : "-"; };
  for (const auto& log : r["logs"]) {
    for (const char* part : {"fitted", "held_out"}) {
      const auto& prior = log["prior"][part];
      const auto& fit = log["fit"][part];
      if (fit["requests"].get<long long>() == 0) continue;
      for (const char* metric : {"latency_ms", "ttft_ms", "tpot_ms"}) {
        if (!fit.contains(metric)) continue;
        const std::string name = std::string(metric).substr(0, std::string(metric).size() - 3);
        t.add({log["log"].get<std::string>(), std::string(part) + " " + std::to_string(fit["requests"].get<long long>()),
               name, prior.contains(metric) ? pct(prior[metric]["per_request_mape"]) : "-",
               pct(fit[metric]["per_request_mape"]), pct(fit[metric]["p50_error"]), pct(fit[metric]["p99_error"])});
      }
    }
  }
  t.print(std::cout);
}

}  // namespace

void write_cost_file(const nlohmann::json& table, const std::string& path) {
  std::ofstream f(path);
  f << table.dump(2) << "\n";
  if (!f) throw Error(path + ": cannot write");
  print_fit_table(table);
  std::cout << "\nwrote " << path << " (" << table["entries"].size() << " entries)\n";
}

int calibrate_command(int argc, char** argv) {
  if (wants_help(argc, argv, kUsage)) return 0;
  Args args(argc, argv,
            {"config", "steps", "out", "holdout-every", "client-log", "cost", "holdout-fraction", "max-evals", "seed"},
            {"verbose"}, {"set"});
  RunConfig config = load_run_config(args.required("config"), args.all("set"));
  if (args.has("client-log")) {
    if (args.has("steps")) throw Error("--steps and --client-log: give one");
    if (args.has("holdout-every")) throw Error("--holdout-every: fits to steps only (use --holdout-fraction)");
    sim::ClientFitOptions opt;
    opt.holdout_fraction = args.number("holdout-fraction", opt.holdout_fraction, 0, 0.95);
    opt.max_evaluations = static_cast<int>(args.integer("max-evals", opt.max_evaluations, 5, 100000));
    opt.seed = static_cast<std::uint64_t>(args.integer("seed", 1, 0, INT64_MAX));
    opt.verbose = args.has("verbose");
    std::vector<ClientLog> logs;
    for (const std::string& path : args.list("client-log")) logs.push_back(read_client_log(path));
    if (logs.empty()) throw Error("--client-log: expected files separated by commas");
    const std::string out = args.required("out");
    const nlohmann::json prior = args.has("cost") ? read_json_file(args.get("cost"), "prior cost file") : nlohmann::json();
    nlohmann::json table = sim::calibrate_from_client_logs(config, logs, prior, opt);
    std::ofstream f(out);
    f << table.dump(2) << "\n";
    if (!f) throw Error(out + ": cannot write");
    print_client_fit(table);
    std::cout << "\nwrote " << out << "; simulate with --set policies.cost_model.name=calibrated --set "
              << "policies.cost_model.path=" << out << " --set sim.dispatch_us=" << fmt(table["meta"]["engine"]["dispatch_us"], 0)
              << "\n";
    return 0;
  }
  for (const char* key : {"cost", "holdout-fraction", "max-evals", "seed"}) {
    if (args.has(key)) throw Error(std::string("--") + key + ": fits to client logs only (--client-log)");
  }
  if (args.has("verbose")) throw Error("--verbose: fits to client logs only (--client-log)");
  FitOptions opt;
  opt.holdout_every = static_cast<int>(args.integer("holdout-every", opt.holdout_every, 0, 1000));
  if (opt.holdout_every == 1) throw Error("--holdout-every: 1 would hold out every step; use 0 or >= 2");
  const auto logs = args.list("steps");
  if (logs.empty()) throw Error("--steps: required: steps.csv files or run folders");
  args.required("out");  // before the work: a missing --out is told at once
  nlohmann::json table = calibrate_cost_model(config, logs, opt);
  write_cost_file(table, args.required("out"));
  return 0;
}

}  // namespace twinfer::cli
