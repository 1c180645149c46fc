#include <cmath>
#include <sstream>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/error.h"
#include "core/json_file.h"
#include "serving/fidelity.h"
#include "serving/recorder.h"
#include "runtime/engine/embedded_runtime.h"
#include "runtime/engine/profiler.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/run_inputs.h"
#include "cli/table.h"
#include "sim/simulator.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer fidelity --config C [--trace T] --out DIR [--device cpu|cuda] [--routers a,b,...]\n"
    "                        [--rate-scales X,Y,...] [--repeats N] [--cost FILE] [--pin] [--seed N]\n"
    "                        [--poisson] [--faults F] [--set key=value ...]\n"
    "\n"
    "How well the simulator predicts the real runtime on a trace. The cost model is fitted first\n"
    "('twinfer profile': probe workloads, not the trace; DIR/cost.json) unless --cost gives one. Then,\n"
    "for each router and each load level (--rate-scales: the trace replayed that many times as fast;\n"
    "default 1), the trace runs for real --repeats times (default 3; DIR/<router>/x<scale>/real<i>/)\n"
    "and once simulated with the fitted cost model, no network and the cost file's measured dispatch\n"
    "delay (meta.engine.dispatch_us; .../sim/). DIR/fidelity.json holds,\n"
    "per case, latency, TTFT and TPOT: P50, P90, P99 and mean of the real runs with their run-to-run\n"
    "spread, the simulation's and its error, and per-request mean absolute percentage errors (the\n"
    "simulation's against the real runs' mean, and the real runs' against each other); .../cdf.csv\n"
    "holds their quantiles (scripts/plot_fidelity.py DIR draws the CDFs as PNG). --pin pins worker\n"
    "threads to cores. With --faults F every run injects the faults of scenario F.\n";

// (row label, fidelity key, statistic)
const std::vector<std::array<const char*, 3>> kRows = {
    {"latency p50", "latency_ms", "p50"}, {"latency p99", "latency_ms", "p99"}, {"ttft p50", "ttft_ms", "p50"},
    {"ttft p99", "ttft_ms", "p99"},       {"tpot p50", "tpot_ms", "p50"},       {"tpot p99", "tpot_ms", "p99"}};

std::string percent(const nlohmann::json& x, int digits = 1) {
  return x.is_number() ? fmt(x.get<double>() * 100, digits) : "-";
}

std::string scale_name(double scale) {
  std::ostringstream s;
  s << "x" << scale;
  return s.str();
}

}  // namespace

int fidelity_command(int argc, char** argv) {
  if (wants_help(argc, argv, kUsage)) return 0;
  Args args(argc, argv,
            {"config", "trace", "out", "seed", "format", "device", "routers", "faults", "rate-scales", "repeats", "cost"},
            {"poisson", "pin"}, {"set"});
  RunInputs in = load_run_inputs(args);
  const std::string out = args.required("out");
  make_output_dir(out);
  const std::string device = args.get("device", "cpu");
  const int repeats = static_cast<int>(args.integer("repeats", 3, 1, 100));
  std::vector<double> scales;
  for (const std::string& s : args.list("rate-scales")) {
    char* end = nullptr;
    const double x = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end != '\0' || !(x > 0) || !std::isfinite(x)) {
      throw Error("--rate-scales: expected numbers > 0 separated by commas, got '" + s + "'");
    }
    scales.push_back(x);
  }
  if (scales.empty()) scales.push_back(1.0);

  std::string cost_path = args.get("cost");
  if (cost_path.empty()) {
    cost_path = out + "/cost.json";
    runtime::ProbeOptions probe;
    probe.device = device;
    probe.pin_threads = args.has("pin");
    probe.seed = seed_option(args);
    probe.verbose = true;
    nlohmann::json table = runtime::profile_cost_model(in.config, probe);
    std::ofstream(cost_path) << table.dump(2) << "\n";
  }
  cost_path = std::filesystem::absolute(cost_path).string();

  // The runtime's dispatch delay that the profile or calibration measured, for the simulations.
  const nlohmann::json engine = read_json_file(cost_path, "the cost-model file")
                                    .value("meta", nlohmann::json::object())
                                    .value("engine", nlohmann::json());
  auto routers = args.list("routers");
  if (routers.empty()) {
    routers.push_back(in.config.router.is_string() ? in.config.router.get<std::string>()
                                                   : in.config.router.value("name", ""));
  }
  RunOptions base = run_options(args, in);
  base.progress = false;
  nlohmann::json report = {{"cost_model", cost_path}, {"device", device}, {"repeats", repeats},
                           {"trace", in.trace.source}, {"routers", nlohmann::json::object()}};
  Table table({"router", "load", "metric", "real", "spread %", "sim", "error %", "req MAPE %", "real-real %"}, 3);
  for (const auto& router : routers) {
    RunConfig real_cfg = in.config;
    if (router != real_cfg.router.value("name", real_cfg.router.is_string() ? real_cfg.router.get<std::string>() : ""))
      real_cfg.router = router;
    RunConfig sim_cfg = real_cfg;
    sim_cfg.cost_model = {{"name", "calibrated"}, {"path", cost_path}};
    sim_cfg.sim.network = "none";
    if (engine.is_object() && engine["dispatch_us"].is_number()) sim_cfg.sim.dispatch_us = engine["dispatch_us"];
    for (double scale : scales) {
      const std::string dir = out + "/" + router + "/" + scale_name(scale);
      RunOptions opt = base;
      opt.rate_scale = base.rate_scale * scale;
      std::vector<std::vector<RequestRecord>> reals;
      nlohmann::json utilization = nlohmann::json::array();
      for (int rep = 1; rep <= repeats; ++rep) {
        runtime::EmbeddedRunOptions run_opt{opt};
        run_opt.device = device;
        run_opt.pin_threads = args.has("pin");
        run_opt.out_dir = dir + "/real" + std::to_string(rep);
        std::vector<RequestRecord> records;
        run_opt.records_out = &records;
        std::cerr << "real run " << rep << " of " << repeats << ", router " << router << ", load "
                  << scale_name(scale) << "\n";
        const nlohmann::json summary = runtime::run_embedded(real_cfg, in.trace, run_opt);
        double busy = 0;
        for (const auto& w : summary["workers"]) busy += w.value("utilization", 0.0);
        utilization.push_back(summary["workers"].empty() ? 0.0 : busy / double(summary["workers"].size()));
        reals.push_back(std::move(records));
      }
      sim::SimRunOptions sim_opt{opt};
      sim_opt.out_dir = dir + "/sim";
      sim::simulate(sim_cfg, in.trace, sim_opt);
      const std::vector<RequestRecord> simulated = read_requests_csv(sim_opt.out_dir + "/requests.csv");
      nlohmann::json result = compare_runs(reals, simulated);
      result["rate_scale"] = scale;
      result["real_utilization"] = utilization;
      report["routers"][router][scale_name(scale)] = result;
      std::ofstream(dir + "/cdf.csv") << fidelity_cdf_csv(reals, simulated);
      for (const auto& [label, key, stat] : kRows) {
        const auto& m = result[key];
        const auto& s = m[stat];
        table.add({router, scale_name(scale), label, fmt_significant(s["real"], 4), percent(s["real_spread"]),
                   fmt_significant(s["sim"], 4), percent(s["error"]), percent(m["per_request_mape"]),
                   percent(m.value("real_per_request_mape", nlohmann::json()))});
      }
    }
  }
  std::ofstream(out + "/fidelity.json") << report.dump(2) << "\n";
  table.print(std::cout);
  std::cout << "\nspread: the largest deviation of one real run from the runs' mean; req MAPE: per-request "
               "error of the simulation; real-real: the same between real runs\nwrote "
            << out << "/fidelity.json\n";
  return 0;
}

}  // namespace twinfer::cli
