#include <algorithm>
#include <fstream>
#include <cmath>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "core/params.h"
#include "core/json_file.h"
#include "serving/recorder.h"
#include "serving/run_config.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/run_inputs.h"
#include "cli/table.h"
#include "traces/synthetic.h"
#include "traces/trace.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer trace gen --spec S.json --out T.csv|T.jsonl [--seed N] [--set key=value ...]\n"
    "       twinfer trace info --trace T [--format F]\n"
    "       twinfer trace convert --trace T [--format F] --out T2.csv|T2.jsonl\n"
    "\n"
    "gen      writes a synthetic trace from a generator spec (see traces/README.md), or from a file\n"
    "         {\"seed\": N, \"spec\": {...}} like traces/data/default_trace.json; --set overrides a key\n"
    "         of the spec, e.g. --set rate_rps=40\n"
    "info     prints the request count, duration, rate and token length statistics of a trace\n"
    "convert  reads any supported format and writes the native one\n";

void print_info(const Trace& t) {
  std::vector<double> in, out;
  for (const auto& r : t.requests) {
    in.push_back(r.input_tokens);
    out.push_back(r.output_tokens);
  }
  std::sort(in.begin(), in.end());
  std::sort(out.begin(), out.end());
  double span_s = t.requests.empty() ? 0 : s_from_us(t.requests.back().arrival_us - t.requests.front().arrival_us);
  std::cout << t.source << ": " << t.requests.size() << " requests over " << fmt(span_s, 1) << " s ("
            << fmt(span_s > 0 ? double(t.requests.size()) / span_s : 0.0, 2) << " req/s)\n";
  Table tab({"tokens", "mean", "p50", "p90", "p99", "max"});
  for (auto* v : {&in, &out}) {
    double sum = 0;
    for (double x : *v) sum += x;
    tab.add({v == &in ? "input" : "output", fmt(v->empty() ? 0.0 : sum / double(v->size())),
             fmt(percentile(*v, 50)), fmt(percentile(*v, 90)), fmt(percentile(*v, 99)), fmt(v->back(), 0)});
  }
  tab.print(std::cout);
}

}  // namespace

int trace_command(int argc, char** argv) {
  if (argc < 1 || wants_help(argc, argv, kUsage)) {
    if (argc < 1) std::cerr << kUsage;
    return argc < 1 ? 2 : 0;
  }
  std::string verb = argv[0];
  Args args(argc - 1, argv + 1, {"spec", "out", "seed", "trace", "format"}, {}, {"set"});
  if (verb == "gen") {
    nlohmann::json spec = read_json_file(args.required("spec"), "trace spec");
    double seed = 1;
    if (spec.is_object() && spec.contains("spec")) {  // a documented spec file: {description, seed, spec}
      seed = spec.value("seed", 1.0);
      spec = nlohmann::json(spec["spec"]);
    }
    for (const auto& s : args.all("set")) apply_override(spec, s);
    if (!(seed >= 0 && seed <= 9'007'199'254'740'992.0) || seed != std::floor(seed)) {
      throw Error(args.required("spec") + ": seed: expected an integer in [0, 2^53], got " + format_number(seed));
    }
    const std::uint64_t chosen = args.has("seed") ? seed_option(args) : static_cast<std::uint64_t>(seed);
    Trace t = generate_synthetic(parse_synthetic_spec(spec, args.required("spec")), chosen);
    write_trace(t, args.required("out"));
    std::cout << "wrote " << args.required("out") << "\n";
    print_info(t);
    return 0;
  }
  if (verb == "info" || verb == "convert") {
    Trace t = read_trace(args.required("trace"), args.get("format", "auto"));
    if (verb == "convert") {
      write_trace(t, args.required("out"));
      std::cout << "wrote " << args.required("out") << "\n";
    }
    print_info(t);
    return 0;
  }
  throw Error("unknown trace command '" + verb + "' (gen, info, convert)");
}

}  // namespace twinfer::cli
