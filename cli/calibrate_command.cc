#include <fstream>
#include <iostream>

#include "core/error.h"
#include "serving/calibration.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/table.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer calibrate --config C --steps PATH[,PATH...] --out cost.json [--holdout-every K]\n"
    "                         [--set key=value ...]\n"
    "\n"
    "Fits the calibrated cost model to the steps that runs logged: each PATH is a steps.csv, or a\n"
    "run's output folder holding one (make runs with --set sim.step_log=true). Workers are matched\n"
    "to the config's instances by name; one entry is fitted per (device, model, tensor\n"
    "parallelism): per-step and per-sequence overheads, linear-layer and attention FLOP times,\n"
    "weights and KV-cache byte times (non-negative least squares of relative errors). Every K-th\n"
    "step (default 5; 0: none) is held out and the fit's error on it reported. Use the file with\n"
    "  --set policies.cost_model.name=calibrated --set policies.cost_model.path=cost.json\n";

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
  Args args(argc, argv, {"config", "steps", "out", "holdout-every"}, {}, {"set"});
  RunConfig config = load_run_config(args.required("config"), args.all("set"));
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
