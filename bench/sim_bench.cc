// Simulator benchmarks (figures for the README and release notes, not pass/fail tests):
//   twinfer_bench_sim speed [repeats]          Azure conversation trace, 8 and 64 GPUs, continuous batching
//   twinfer_bench_sim vidur [repeats]          Vidur's reference workload (Llama-2-70B TP2 on 4x 2xA100)
//   twinfer_bench_sim request_level [repeats]  1M synthetic requests, 64 workers, request-level batching,
//                                              against a bare C++ event loop running the same policies
//   twinfer_bench_sim policies                 every router on the heterogeneous cluster near saturation
// Each figure is the median of `repeats` runs (default 5) measured side by side in one process.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/bare_event_loop.h"
#include "core/error.h"
#include "policies/registry.h"
#include "sim/simulator.h"
#include "traces/synthetic.h"
#include "traces/trace.h"

namespace twinfer::bench {
namespace {

const std::string kSource = TWINFER_SOURCE_DIR;
const std::string kConvTrace = std::string(TWINFER_SHARED_TRACES_DIR) + "/azure_llm_2023/AzureLLMInferenceTrace_conv.csv";

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

struct Runs {
  std::vector<double> wall_s, rss_mb;
  nlohmann::json last;
};

Runs repeat(const RunConfig& config, const Trace& trace, int repeats) {
  Runs runs;
  for (int i = 0; i < repeats; ++i) {
    sim::SimRunOptions opt;
    runs.last = sim::simulate(config, trace, opt);
    runs.wall_s.push_back(runs.last["sim"]["wall_s"].get<double>());
    runs.rss_mb.push_back(runs.last["sim"]["max_rss_mb"].get<double>());
  }
  return runs;
}

void print_run(const char* label, const Trace& trace, const Runs& r) {
  double wall = median(r.wall_s);
  double events = r.last["sim"]["events"].get<double>();
  std::printf("%-44s %8zu req  %8.3f s wall  %10.0f req/s  %11.0f events/s  %7.1f MB peak  p99 %.0f ms\n", label,
              trace.requests.size(), wall, double(trace.requests.size()) / wall, events / wall, median(r.rss_mb),
              r.last["latency_ms"]["p99"].is_number() ? r.last["latency_ms"]["p99"].get<double>() : -1.0);
}

Trace conv_trace() {
  try {
    return read_trace(kConvTrace);
  } catch (const Error& e) {
    std::fprintf(stderr, "skipped: the Azure conversation trace is not available (%s)\n", e.what());
    std::exit(0);
  }
}

void speed(int repeats) {
  Trace t = conv_trace();
  for (const char* cfg : {"h100x8.json", "gpu64.json"}) {
    RunConfig c = load_run_config(kSource + "/configs/" + cfg);
    print_run((std::string("conv trace, ") + cfg + ", continuous").c_str(), t, repeat(c, t, repeats));
  }
}

void vidur(int repeats) {
  Trace t = conv_trace();
  RunConfig c = load_run_config(kSource + "/configs/vidur_llama2_70b_a100_tp2.json");
  print_run("Vidur reference: Llama-2-70B TP2, 4x(2xA100)", t, repeat(c, t, repeats));
  RunConfig none = load_run_config(kSource + "/configs/vidur_llama2_70b_a100_tp2.json", {"sim.network=none"});
  print_run("  same, without network model", t, repeat(none, t, repeats));
  RunConfig quiet =
      load_run_config(kSource + "/configs/vidur_llama2_70b_a100_tp2.json", {"sim.network=none", "sim.timeline=false"});
  print_run("  same, no network model, no timeline", t, repeat(quiet, t, repeats));
}

// A 1M-request Poisson trace at ~70% of the 64 workers' request-level capacity.
Trace million_requests(const RunConfig& c) {
  auto cost = cost_model_registry().make(c.cost_model, PolicyContext{}, "policies.cost_model");
  RequestBatchShape full;
  full.batch_size = 8;
  full.input_tokens = full.max_input_tokens = 8 * 256;
  full.output_tokens = 8 * 32;
  full.max_output_tokens = 32;
  double batch_s = s_from_us(cost->batch_time_us(c.cluster.instances[0], full));
  double capacity_rps = double(c.cluster.instances.size()) * 8 / batch_s;
  nlohmann::json spec = {{"requests", 1000000},
                         {"rate_rps", 0.7 * capacity_rps},
                         {"arrival", "poisson"},
                         {"input", {{"kind", "constant"}, {"mean", 256}}},
                         {"output", {{"kind", "constant"}, {"mean", 32}}}};
  return generate_synthetic(parse_synthetic_spec(spec, "bench"), 7);
}

void request_level(int repeats) {
  const std::vector<std::string> sets = {"policies.batcher.name=request_level", "policies.batcher.max_batch_size=8",
                                         "policies.batcher.max_queue_delay_us=2000", "sim.timeline=false"};
  RunConfig flow = load_run_config(kSource + "/configs/gpu64.json", sets);
  auto none_sets = sets;
  none_sets.push_back("sim.network=none");
  RunConfig none = load_run_config(kSource + "/configs/gpu64.json", none_sets);
  Trace t = million_requests(flow);
  std::vector<double> bare;
  BareLoopResult b;
  for (int i = 0; i < repeats; ++i) {
    b = run_bare_event_loop(none, t, 1);
    bare.push_back(b.wall_s);
  }
  auto latency_sets = sets;
  latency_sets.push_back("sim.network=latency");
  RunConfig latency = load_run_config(kSource + "/configs/gpu64.json", latency_sets);
  Runs rn = repeat(none, t, repeats);
  Runs rl = repeat(latency, t, repeats);
  Runs rf = repeat(flow, t, repeats);
  print_run("1M synthetic, 64 workers, request-level", t, rf);
  print_run("  same, latency-only network model", t, rl);
  print_run("  same, without network model", t, rn);
  double bare_wall = median(bare);
  std::printf("%-44s %8zu req  %8.3f s wall  %10.0f req/s  (%lld completed, mean latency %.1f ms)\n",
              "  bare C++ event loop, same policies", t.requests.size(), bare_wall,
              double(t.requests.size()) / bare_wall, (long long)b.completed, b.mean_latency_ms);
  std::printf("simulator / bare loop speed: %.2f (no network), %.2f (latency network), %.2f (flow network); "
              "sim mean latency %.1f ms\n",
              bare_wall / median(rn.wall_s), bare_wall / median(rl.wall_s), bare_wall / median(rf.wall_s),
              rn.last["latency_ms"]["mean"].get<double>());
}

void policies() {
  Trace t = conv_trace();
  const double rate_scale = std::getenv("TWINFER_BENCH_RATE_SCALE") ? std::atof(std::getenv("TWINFER_BENCH_RATE_SCALE")) : 16.0;
  RunConfig base = load_run_config(kSource + "/configs/heterogeneous.json");
  std::printf("heterogeneous cluster, Azure conversation trace at %.1fx its rate\n", rate_scale);
  std::printf("%-18s %10s %10s %10s %12s %8s\n", "router", "p50 ms", "p99 ms", "ttft p99", "goodput/s", "SLO %");
  for (const auto& name : router_registry().names()) {
    RunConfig c = base;
    c.router = name;
    sim::SimRunOptions opt;
    opt.rate_scale = rate_scale;
    auto s = sim::simulate(c, t, opt);
    std::printf("%-18s %10.0f %10.0f %10.0f %12.2f %8.1f\n", name.c_str(), s["latency_ms"]["p50"].get<double>(),
                s["latency_ms"]["p99"].get<double>(), s["ttft_ms"]["p99"].get<double>(),
                s["goodput_rps"].get<double>(), 100 * s["slo_attainment"].get<double>());
  }
}

}  // namespace
}  // namespace twinfer::bench

int main(int argc, char** argv) {
  std::string what = argc > 1 ? argv[1] : "all";
  int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  try {
    if (what == "speed" || what == "all") twinfer::bench::speed(repeats);
    if (what == "vidur" || what == "all") twinfer::bench::vidur(repeats);
    if (what == "request_level" || what == "all") twinfer::bench::request_level(repeats);
    if (what == "policies" || what == "all") twinfer::bench::policies();
  } catch (const twinfer::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
