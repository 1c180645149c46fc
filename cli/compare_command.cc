#include <iostream>

#include "core/error.h"
#include "serving/recorder.h"
#include "policies/registry.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/run_inputs.h"
#include "cli/table.h"
#include "sim/simulator.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer compare --config C [--trace T] --routers a,b,... [--batchers x,y,...]\n"
    "                       [--admissions p,q,...] [--autoscalers s,t,...] [--out DIR] [--seed N]\n"
    "                       [--rate-scale X] [--set key=value ...]\n"
    "\n"
    "Simulates every combination of the listed policies (others as in the config; a name replaces\n"
    "the config's policy with that policy's defaults unless it is the same policy), prints one table,\n"
    "and writes it to DIR/compare.csv (default: out/compare/compare.csv) with each run's files under\n"
    "DIR/<router>-<batcher>-<admission>[-<autoscaler>]/ when --out is given.\n"
    "Autoscaler \"static\" runs every instance of the cluster throughout (no autoscaling); the others\n"
    "use the config's \"autoscaling\" section (bounds, interval, cold start) with that autoscaler.\n";

// The config's own spec when it names `name` (keeping its parameters), else the bare name.
nlohmann::json spec_for(const nlohmann::json& configured, const std::string& name) {
  if (configured.is_string() && configured.get<std::string>() == name) return configured;
  if (configured.is_object() && configured.value("name", "") == name) return configured;
  return name;
}

std::vector<std::string> names_or_configured(const Args& args, const char* option, const nlohmann::json& configured) {
  auto names = args.list(option);
  if (!names.empty()) return names;
  return {configured.is_string() ? configured.get<std::string>() : configured.value("name", "")};
}

// The config with autoscaler `name`: "static" turns autoscaling off.
RunConfig with_autoscaler(const RunConfig& config, const std::string& name) {
  RunConfig rc = config;
  if (name == "static") {
    rc.autoscaling.autoscaler = nullptr;
  } else {
    rc.autoscaling.autoscaler = spec_for(config.autoscaling.autoscaler, name);
  }
  return rc;
}

}  // namespace

int compare_command(int argc, char** argv) {
  if (wants_help(argc, argv, kUsage)) return 0;
  Args args(argc, argv, {"config", "trace", "routers", "batchers", "admissions", "autoscalers", "out", "seed", "rate-scale",
             "format"},
            {"no-progress", "poisson"}, {"set"});
  RunInputs in = load_run_inputs(args);
  if (args.list("routers").empty() && args.list("batchers").empty() && args.list("admissions").empty() &&
      args.list("autoscalers").empty()) {
    throw Error("give at least one of --routers, --batchers, --admissions, --autoscalers (comma-separated names)");
  }
  auto routers = names_or_configured(args, "routers", in.config.router);
  auto batchers = names_or_configured(args, "batchers", in.config.batcher);
  auto admissions = names_or_configured(args, "admissions", in.config.admission);
  std::vector<std::string> autoscalers = args.list("autoscalers");
  if (autoscalers.empty()) autoscalers = {""};  // as configured
  RunOptions base = run_options(args, in);
  base.progress = false;
  const std::string out = base.out_dir;

  Table table({"router", "batcher", "admission", "completed", "rejected", "dropped", "p50 ms", "p99 ms",
               "ttft p99 ms", "tpot p50 ms", "req/s", "goodput/s", "SLO %", "autoscaler", "GPU-h",
               "cost/M req", "scale events", "wall s"},
              3);
  for (const auto& r : routers) {
    for (const auto& b : batchers) {
      for (const auto& a : admissions) {
        for (const auto& sc : autoscalers) {
          RunConfig rc = sc.empty() ? in.config : with_autoscaler(in.config, sc);
          rc.router = spec_for(in.config.router, r);
          rc.batcher = spec_for(in.config.batcher, b);
          rc.admission = spec_for(in.config.admission, a);
          sim::SimRunOptions opt{base};
          opt.out_dir = out.empty() ? "" : out + "/" + r + "-" + b + "-" + a + (sc.empty() ? "" : "-" + sc);
          std::cerr << "simulating router=" << r << " batcher=" << b << " admission=" << a
                    << (sc.empty() ? "" : " autoscaler=" + sc) << "\n";
          nlohmann::json s = sim::simulate(rc, in.trace, opt);
          const auto& q = s["requests"];
          table.add({r, b, a, std::to_string(q["completed"].get<long long>()),
                     std::to_string(q["rejected"].get<long long>()), std::to_string(q["dropped"].get<long long>()),
                     fmt(s["latency_ms"]["p50"]), fmt(s["latency_ms"]["p99"]), fmt(s["ttft_ms"]["p99"]),
                     fmt(s["tpot_ms"]["p50"], 2), fmt(s["throughput_rps"], 2), fmt(s["goodput_rps"], 2),
                     fmt(s["slo_attainment"].get<double>() * 100, 1), autoscaler_name(s), fmt(s["cost"]["gpu_hours"], 2),
                     fmt(s["cost"]["cost_per_million_requests"], 1), std::to_string(scale_events(s)),
                     fmt(s["sim"]["wall_s"], 3)});
        }
      }
    }
  }
  table.print(std::cout);
  const std::string dir = out.empty() ? "out/compare" : out;
  make_output_dir(dir);
  const std::string csv = dir + "/compare.csv";
  table.write_csv(csv);
  std::cout << "\nwrote " << csv << "\n";
  return 0;
}

}  // namespace twinfer::cli
