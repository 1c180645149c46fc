#include <algorithm>
#include <fstream>
#include <cmath>
#include <iostream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "core/params.h"
#include "core/percentile.h"
#include "core/json_file.h"
#include "serving/run_config.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/help.h"
#include "cli/run_inputs.h"
#include "cli/table.h"
#include "policies/kv_blocks.h"
#include "traces/synthetic.h"
#include "traces/trace.h"

namespace twinfer::cli {
namespace {

const char kUsage[] =
    "usage: twinfer trace gen --spec S.json --out T.csv|T.jsonl [--seed N] [--set key=value ...]\n"
    "       twinfer trace info --trace T [--format F] [--block-tokens N]\n"
    "       twinfer trace convert --trace T [--format F] --out T2.csv|T2.jsonl\n"
    "\n"
    "gen      writes a synthetic trace from a generator spec (see traces/README.md), or from a file\n"
    "         {\"seed\": N, \"spec\": {...}} like traces/data/default_trace.json; --set overrides a key\n"
    "         of the spec, e.g. --set rate_rps=40\n"
    "info     prints the request count, duration, rate and token length statistics of a trace, and\n"
    "         for a trace with hash ids the prefix reuse an unbounded cache of N-token blocks finds\n"
    "         (default 16, the continuous batcher's block_tokens)\n"
    "convert  reads any supported format and writes the native one\n";

// Token lengths counted by value: the exact statistics of any number of requests in little
// memory (lengths below 2^20 in an array, longer ones in a map).
class LengthCounts {
 public:
  void add(std::int32_t tokens) {
    ++n_;
    sum_ += tokens;
    if (tokens < kDense) {
      if (static_cast<std::size_t>(tokens) >= dense_.size()) dense_.resize(static_cast<std::size_t>(tokens) + 1, 0);
      ++dense_[static_cast<std::size_t>(tokens)];
    } else {
      ++sparse_[tokens];
    }
  }
  std::int64_t count() const { return n_; }
  std::int64_t sum() const { return sum_; }
  double mean() const { return n_ == 0 ? 0.0 : double(sum_) / double(n_); }
  // (value, count), ascending by value.
  std::vector<std::pair<double, std::int64_t>> histogram() const {
    std::vector<std::pair<double, std::int64_t>> out;
    for (std::size_t v = 0; v < dense_.size(); ++v) {
      if (dense_[v] > 0) out.emplace_back(double(v), dense_[v]);
    }
    for (const auto& kv : sparse_) out.emplace_back(double(kv.first), kv.second);
    return out;
  }

 private:
  static constexpr std::int32_t kDense = 1 << 20;
  std::int64_t n_ = 0;
  std::int64_t sum_ = 0;  // exact: lengths are below 2^31, counts far below 2^32
  std::vector<std::int64_t> dense_;
  std::map<std::int32_t, std::int64_t> sparse_;
};

// What `trace info` prints, gathered a request at a time (a trace streamed from its file, or
// one in memory).
class TraceInfo {
 public:
  explicit TraceInfo(int block_tokens = kDefaultBlockTokens) : reuse_(block_tokens), block_tokens_(block_tokens) {}

  void add(const Request& r) {
    first_us_ = std::min(first_us_, r.arrival_us);
    last_us_ = std::max(last_us_, r.arrival_us);
    input_.add(r.input_tokens);
    output_.add(r.output_tokens);
    with_ids_ += r.prefix.empty() ? 0 : 1;
    with_tokens_ += r.prefix.has_tokens() ? 1 : 0;
    cached_tokens_ += reuse_.add(r);
  }

  void print(const std::string& source, std::ostream& out) const {
    const std::int64_t n = input_.count();
    const double span_s = n == 0 ? 0 : s_from_us(last_us_ - first_us_);
    out << source << ": " << n << " requests over " << fmt(span_s, 1) << " s ("
        << fmt(span_s > 0 ? double(n) / span_s : 0.0, 2) << " req/s)\n";
    Table tab({"tokens", "mean", "p50", "p90", "p99", "max"});
    for (const LengthCounts* lengths : {&input_, &output_}) {
      const auto histogram = lengths->histogram();
      tab.add({lengths == &input_ ? "input" : "output", fmt(lengths->mean()), fmt(percentile_of_counts(histogram, 50)),
               fmt(percentile_of_counts(histogram, 90)), fmt(percentile_of_counts(histogram, 99)),
               fmt(histogram.back().first, 0)});
    }
    tab.print(out);
    if (with_ids_ == 0) return;
    const std::int64_t prompt_tokens = input_.sum();
    out << "prefix reuse: "
        << fmt(prompt_tokens > 0 ? 100.0 * double(cached_tokens_) / double(prompt_tokens) : 0.0, 1)
        << "% of prompt tokens (" << cached_tokens_ << " of " << prompt_tokens
        << ") in blocks seen before, an unbounded cache of " << block_tokens_ << "-token blocks; " << with_ids_
        << " of " << n << " requests carry hash ids";
    if (with_tokens_ > 0) out << " (" << with_tokens_ << " hashed from their token ids)";
    out << "\n";
  }

  static constexpr int kDefaultBlockTokens = 16;

 private:
  PrefixReuse reuse_;
  int block_tokens_;
  std::int64_t with_ids_ = 0;
  std::int64_t with_tokens_ = 0;
  std::int64_t cached_tokens_ = 0;
  TimeUs first_us_ = kNever;
  TimeUs last_us_ = 0;
  LengthCounts input_, output_;
};

void print_info(const Trace& t) {
  TraceInfo info;
  for (const Request& r : t.requests) info.add(r);
  info.print(t.source, std::cout);
}

}  // namespace

int trace_command(int argc, char** argv) {
  if (argc < 1 || wants_help(argc, argv, kUsage)) {
    if (argc < 1) std::cerr << kUsage;
    return argc < 1 ? 2 : 0;
  }
  std::string verb = argv[0];
  Args args(argc - 1, argv + 1, {"spec", "out", "seed", "trace", "format", "block-tokens"}, {}, {"set"});
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
  if (verb == "info") {
    // Streamed: a trace of any size in a few megabytes (and the distinct prefix blocks it holds).
    TraceInfo info(static_cast<int>(args.integer("block-tokens", TraceInfo::kDefaultBlockTokens, 1, 1 << 30)));
    const std::string path = args.required("trace");
    for_each_request(path, args.get("format", "auto"), [&info](const Request& r) { info.add(r); });
    info.print(path, std::cout);
    return 0;
  }
  if (verb == "convert") {
    Trace t = read_trace(args.required("trace"), args.get("format", "auto"));
    write_trace(t, args.required("out"));
    std::cout << "wrote " << args.required("out") << "\n";
    print_info(t);
    return 0;
  }
  throw Error("unknown trace command '" + verb + "' (gen, info, convert)");
}

}  // namespace twinfer::cli
