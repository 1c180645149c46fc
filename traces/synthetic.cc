#include "traces/synthetic.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "core/error.h"
#include "core/params.h"
#include "traces/sampling.h"

namespace twinfer {

namespace {

constexpr std::int64_t kMaxZipfRange = 10'000'000;
constexpr std::int64_t kMaxRequests = 1'000'000'000;

void require(bool ok, const std::string& where, const std::string& key, const std::string& message) {
  if (!ok) throw Error(where + "." + key + ": " + message);
}

bool kind_uses(const std::string& kind, const std::string& key) {
  if (key == "mean") return kind == "constant" || kind == "exponential" || kind == "lognormal";
  if (key == "sigma") return kind == "lognormal";
  if (key == "alpha") return kind == "zipf";
  return true;  // kind, min, max
}

void check_length(const LengthDistribution& d, const std::string& where) {
  static const char* kKinds[] = {"constant", "uniform", "exponential", "lognormal", "zipf"};
  require(std::find(std::begin(kKinds), std::end(kKinds), d.kind) != std::end(kKinds), where, "kind",
          "unknown kind '" + d.kind + "'; valid kinds: constant, uniform, exponential, lognormal, zipf");
  require(std::isfinite(d.mean) && (d.kind == "constant" ? d.mean >= 0 : d.mean > 0), where, "mean",
          "must be positive (a constant may be 0)");
  require(std::isfinite(d.sigma) && d.sigma >= 0, where, "sigma", "must be >= 0");
  require(std::isfinite(d.alpha) && d.alpha >= 0, where, "alpha", "must be >= 0");
  require(d.min >= (d.kind == "zipf" ? 1 : 0), where, "min", d.kind == "zipf" ? "must be >= 1 for zipf" : "must be >= 0");
  require(d.max >= d.min, where, "max", "must be >= min");
  require(d.kind != "zipf" || std::int64_t{d.max} - d.min <= kMaxZipfRange, where, "max",
          "zipf range max - min must be at most " + std::to_string(kMaxZipfRange));
}

void check_weights(const std::vector<double>& weights, std::size_t choices, const std::string& where,
                   const std::string& key, const std::string& of) {
  if (weights.empty()) return;
  require(weights.size() == choices, where, key, "needs one weight per entry of " + of);
  double sum = 0;
  for (double w : weights) {
    require(std::isfinite(w) && w >= 0, where, key, "weights must be finite and >= 0");
    sum += w;
  }
  require(sum > 0, where, key, "weights must not all be 0");
}

void check_spec(const SyntheticSpec& s, const std::string& where) {
  require(s.requests >= 1 && s.requests <= kMaxRequests, where, "requests",
          "must be in [1, " + std::to_string(kMaxRequests) + "]");
  require(std::isfinite(s.rate_rps) && s.rate_rps > 0, where, "rate_rps", "must be > 0");
  require(s.arrival == "poisson" || s.arrival == "gamma", where, "arrival",
          "unknown arrival process '" + s.arrival + "'; valid: poisson, gamma");
  require(std::isfinite(s.cv) && s.cv > 0, where, "cv", "must be > 0");
  require(s.arrival == "gamma" || s.cv == 1.0, where, "cv", "applies only to gamma arrivals (poisson has cv 1)");
  check_length(s.input, where + ".input");
  check_length(s.output, where + ".output");
  check_weights(s.model_weights, s.models.size(), where, "model_weights", "models");
  check_weights(s.priority_weights, s.priorities.size(), where, "priority_weights", "priorities");
  require(std::isfinite(s.deadline_ms) && s.deadline_ms >= 0, where, "deadline_ms", "must be >= 0 (0: none)");
  require(s.sessions >= 0, where, "sessions", "must be >= 0 (0: no session keys)");
}

LengthDistribution parse_length(const nlohmann::json& object, const std::string& where, LengthDistribution d) {
  JsonParams p(object, where);
  p.get("kind", d.kind);
  for (const char* key : {"mean", "sigma", "alpha"}) {
    p.require(!p.has(key) || kind_uses(d.kind, key), key, "does not apply to kind '" + d.kind + "'");
  }
  p.get("mean", d.mean);
  p.get("sigma", d.sigma);
  p.get("alpha", d.alpha);
  p.get("min", d.min);
  p.get("max", d.max);
  p.done();
  return d;
}

// Rounds and clamps samples of one length distribution.
class LengthSampler {
 public:
  explicit LengthSampler(const LengthDistribution& d) : d_(d) {
    if (d.kind == "zipf") zipf_ = std::make_unique<ZipfSampler>(d.min, d.max, d.alpha);
    // mu makes the unclamped mean exp(mu + sigma^2 / 2) equal to d.mean.
    mu_ = d.kind == "lognormal" ? std::log(d.mean) - 0.5 * d.sigma * d.sigma : 0.0;
  }

  std::int32_t sample(std::mt19937_64& rng) const {
    double x = d_.mean;
    if (d_.kind == "uniform") {
      const auto span = static_cast<std::uint64_t>(std::int64_t{d_.max} - d_.min + 1);
      return static_cast<std::int32_t>(d_.min + static_cast<std::int64_t>(uniform01(rng) * static_cast<double>(span)));
    }
    if (d_.kind == "zipf") return static_cast<std::int32_t>(zipf_->sample(rng));
    if (d_.kind == "exponential") x = exponential(rng, d_.mean);
    if (d_.kind == "lognormal") x = lognormal(rng, mu_, d_.sigma);
    x = std::clamp(x, static_cast<double>(d_.min), static_cast<double>(d_.max));
    return static_cast<std::int32_t>(std::llround(x));
  }

 private:
  LengthDistribution d_;
  double mu_ = 0;
  std::unique_ptr<ZipfSampler> zipf_;
};

std::vector<double> or_equal_weights(const std::vector<double>& weights, std::size_t n) {
  return weights.empty() ? std::vector<double>(n, 1.0) : weights;
}

// The streams each attribute draws from (see generate_synthetic()).
enum Stream : std::uint64_t { kGaps, kInput, kOutput, kModel, kPriority, kSession };

}  // namespace

SyntheticSpec parse_synthetic_spec(const nlohmann::json& spec, const std::string& where) {
  SyntheticSpec s;
  JsonParams p(spec, where);
  p.get("requests", s.requests);
  p.get("rate_rps", s.rate_rps);
  p.get("arrival", s.arrival);
  p.get("cv", s.cv);
  nlohmann::json input = nlohmann::json::object(), output = nlohmann::json::object();
  p.get("input", input);
  p.get("output", output);
  s.input = parse_length(input, where + ".input", s.input);
  s.output = parse_length(output, where + ".output", s.output);
  p.get("models", s.models);
  p.get("model_weights", s.model_weights);
  p.get("priorities", s.priorities);
  p.get("priority_weights", s.priority_weights);
  p.get("deadline_ms", s.deadline_ms);
  p.get("sessions", s.sessions);
  p.done();
  check_spec(s, where);
  return s;
}

Trace generate_synthetic(const SyntheticSpec& spec, std::uint64_t seed) {
  check_spec(spec, "synthetic");
  std::mt19937_64 gaps(derive_seed(seed, kGaps)), inputs(derive_seed(seed, kInput)),
      outputs(derive_seed(seed, kOutput)), models(derive_seed(seed, kModel)),
      priorities(derive_seed(seed, kPriority)), sessions(derive_seed(seed, kSession));
  const LengthSampler input_length(spec.input), output_length(spec.output);
  const WeightedChoice model_choice(or_equal_weights(spec.model_weights, std::max<std::size_t>(spec.models.size(), 1)));
  const WeightedChoice priority_choice(
      or_equal_weights(spec.priority_weights, std::max<std::size_t>(spec.priorities.size(), 1)));
  const double mean_gap_s = 1.0 / spec.rate_rps;
  const double gamma_shape = 1.0 / (spec.cv * spec.cv);

  Trace trace;
  trace.requests.resize(static_cast<std::size_t>(spec.requests));
  double arrival_s = 0;
  const std::vector<SharedString> model_names(spec.models.begin(), spec.models.end());
  SharedStrings session_names;
  for (std::size_t i = 0; i < trace.requests.size(); ++i) {
    Request& r = trace.requests[i];
    if (i > 0) {
      arrival_s += spec.arrival == "gamma" ? gamma_variate(gaps, gamma_shape, mean_gap_s / gamma_shape)
                                           : exponential(gaps, mean_gap_s);
    }
    r.id = i;
    r.arrival_us = us_from_s(arrival_s);
    r.input_tokens = input_length.sample(inputs);
    r.output_tokens = output_length.sample(outputs);
    if (!spec.models.empty()) r.model = model_names[model_choice.sample(models)];
    if (!spec.priorities.empty()) r.priority = spec.priorities[priority_choice.sample(priorities)];
    if (spec.deadline_ms > 0) r.deadline_us = r.arrival_us + us_from_ms(spec.deadline_ms);
    if (spec.sessions > 0) {
      r.session = session_names(
          "s" + std::to_string(static_cast<std::int64_t>(uniform01(sessions) * static_cast<double>(spec.sessions))));
    }
  }
  trace.source = "synthetic seed=" + std::to_string(seed) + " requests=" + std::to_string(spec.requests) +
                 " arrival=" + spec.arrival;
  return trace;
}

}  // namespace twinfer
