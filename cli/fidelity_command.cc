#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "core/error.h"
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
    "                        [--rate-scale X] [--seed N] [--faults F] [--set key=value ...]\n"
    "\n"
    "Profiles the backend (DIR/profile.json), then for each router runs the trace for real\n"
    "(DIR/<router>/real/) and simulated with the measured profile and no network\n"
    "(DIR/<router>/sim/), and writes the relative errors of the simulation in DIR/fidelity.json.\n"
    "With --faults F both runs inject the faults of scenario F (for real: worker threads crash and\n"
    "restart, steps slow down, hand-offs are delayed), so that the simulated outcome can be checked\n"
    "against the real one.\n";

// (metric name in the table, summary key, statistic)
const std::vector<std::array<const char*, 3>> kMetrics = {
    {"latency p50", "latency_ms", "p50"}, {"latency p90", "latency_ms", "p90"}, {"latency p99", "latency_ms", "p99"},
    {"ttft p50", "ttft_ms", "p50"},       {"ttft p99", "ttft_ms", "p99"},       {"tpot p50", "tpot_ms", "p50"},
    {"tpot p99", "tpot_ms", "p99"},       {"throughput", "throughput_rps", ""},
    {"completed", "requests", "completed"}, {"dropped", "requests", "dropped"},
    {"timed out", "requests", "timed_out"}, {"retries", "requests", "retries"}};

double value_of(const nlohmann::json& s, const char* key, const char* stat) {
  const auto& v = *stat ? s[key][stat] : s[key];
  return v.is_number() ? v.get<double>() : std::nan("");
}

}  // namespace

int fidelity_command(int argc, char** argv) {
  if (wants_help(argc, argv, kUsage)) return 0;
  Args args(argc, argv, {"config", "trace", "out", "seed", "rate-scale", "format", "device", "routers", "faults"},
            {"poisson"},
            {"set"});
  RunInputs in = load_run_inputs(args);
  const std::string out = args.required("out");
  make_output_dir(out);
  const std::string device = args.get("device", "cpu");
  const std::string profile_path = std::filesystem::absolute(out + "/profile.json").string();
  {
    nlohmann::json table = runtime::profile_backends(in.config, device == "cuda" ? "cuda:0" : device, {}, true);
    std::ofstream(profile_path) << table.dump(2) << "\n";
  }
  auto routers = args.list("routers");
  if (routers.empty()) {
    routers.push_back(in.config.router.is_string() ? in.config.router.get<std::string>()
                                                   : in.config.router.value("name", ""));
  }
  RunOptions base = run_options(args, in);
  base.progress = false;
  nlohmann::json report = {{"profile", profile_path}, {"device", device}, {"routers", nlohmann::json::object()}};
  Table table({"router", "metric", "real", "sim", "error %"}, 2);
  for (const auto& router : routers) {
    RunConfig real_cfg = in.config;
    if (router != real_cfg.router.value("name", real_cfg.router.is_string() ? real_cfg.router.get<std::string>() : ""))
      real_cfg.router = router;
    runtime::EmbeddedRunOptions run_opt{base};
    run_opt.device = device;
    run_opt.out_dir = out + "/" + router + "/real";
    std::cerr << "real run, router " << router << "\n";
    nlohmann::json real = runtime::run_embedded(real_cfg, in.trace, run_opt);

    RunConfig sim_cfg = real_cfg;
    sim_cfg.cost_model = {{"name", "profile"}, {"path", profile_path}};
    sim_cfg.sim.network = "none";
    sim::SimRunOptions o{base};
    o.out_dir = out + "/" + router + "/sim";
    nlohmann::json simulated = sim::simulate(sim_cfg, in.trace, o);

    nlohmann::json errors;
    for (const auto& [name, key, stat] : kMetrics) {
      double r = value_of(real, key, stat), s = value_of(simulated, key, stat);
      double err = (std::isnan(r) || std::isnan(s) || r == 0) ? std::nan("") : (s - r) / r;
      errors[name] = {{"real", std::isnan(r) ? nlohmann::json() : nlohmann::json(r)},
                      {"sim", std::isnan(s) ? nlohmann::json() : nlohmann::json(s)},
                      {"relative_error", std::isnan(err) ? nlohmann::json() : nlohmann::json(err)}};
      table.add({router, name, fmt(errors[name]["real"], 2), fmt(errors[name]["sim"], 2),
                 std::isnan(err) ? "-" : fmt(err * 100, 1)});
    }
    report["routers"][router] = errors;
  }
  std::ofstream(out + "/fidelity.json") << report.dump(2) << "\n";
  table.print(std::cout);
  std::cout << "\nwrote " << out << "/fidelity.json\n";
  return 0;
}

}  // namespace twinfer::cli
