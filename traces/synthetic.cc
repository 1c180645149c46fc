#include "traces/synthetic.h"

#include <algorithm>
#include <cmath>
#include <limits>
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
  if (!s.has_prefix) return;
  require(s.sessions == 0, where, "sessions", "does not apply with a prefix (each conversation is a session)");
  const std::string at = where + ".prefix";
  require(s.prefix.block_tokens >= 1 && s.prefix.block_tokens <= (1 << 20), at, "block_tokens", "must be in [1, 2^20]");
  require(s.prefix.tenants >= 0 && s.prefix.tenants <= 1'000'000, at, "tenants", "must be in [0, 1000000] (0: no system prompt)");
  check_length(s.prefix.system_tokens, at + ".system_tokens");
  require(s.prefix.conversations >= 1 && s.prefix.conversations <= 10'000'000, at, "conversations", "must be in [1, 10000000]");
  check_length(s.prefix.turns, at + ".turns");
  require(s.prefix.turns.min >= 1, at + ".turns", "min", "must be >= 1");
  require(s.prefix.max_context >= 1 && s.prefix.max_context <= std::numeric_limits<std::int32_t>::max(), at,
          "max_context", "must be in [1, 2^31)");
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
enum Stream : std::uint64_t { kGaps, kInput, kOutput, kModel, kPriority, kSession, kPrefix };

// The open conversations of a PrefixSpec and the hash ids of their contexts.
class Conversations {
 public:
  Conversations(const PrefixSpec& spec, std::uint64_t seed)
      : spec_(spec), rng_(seed), system_length_(spec.system_tokens), turns_(spec.turns),
        open_(static_cast<std::size_t>(spec.conversations)) {
    for (std::int64_t t = 0; t < spec.tenants; ++t) {
      const std::int32_t length = system_length_.sample(rng_);
      std::vector<std::uint64_t> ids(static_cast<std::size_t>(length / spec.block_tokens));
      for (auto& id : ids) id = next_id_++;
      tenants_.push_back({length, std::move(ids)});
    }
  }

  // Fills r's input_tokens, prefix and session for a turn of `new_tokens` new input; its output
  // then joins the context.
  void next_turn(Request& r, std::int32_t new_tokens, SharedStrings& names) {
    Conversation& c = open_[static_cast<std::size_t>(uniform01(rng_) * static_cast<double>(open_.size()))];
    if (c.turns_left == 0 || c.context + new_tokens > spec_.max_context) start(c, names);
    const std::int64_t room = spec_.max_context - c.context;
    const std::int64_t length = c.context + std::min<std::int64_t>(new_tokens, std::max<std::int64_t>(room, 0));
    const std::size_t full = static_cast<std::size_t>(length / spec_.block_tokens);
    while (c.ids->size() < full) c.ids->push_back(next_id_++);
    const bool partial = length % spec_.block_tokens != 0;
    r.input_tokens = static_cast<std::int32_t>(length);
    r.prefix = BlockHashes(spec_.block_tokens, c.ids, full, partial, partial ? next_id_++ : 0);
    r.session = c.name;
    c.context = length + r.output_tokens;
    --c.turns_left;
  }

 private:
  struct Tenant {
    std::int32_t length;
    std::vector<std::uint64_t> ids;  // of its full blocks
  };
  struct Conversation {
    std::int64_t context = 0;  // tokens so far
    std::int64_t turns_left = 0;
    std::shared_ptr<std::vector<std::uint64_t>> ids;  // of the context's full blocks
    SharedString name;
  };

  void start(Conversation& c, SharedStrings& names) {
    c.ids = std::make_shared<std::vector<std::uint64_t>>();
    c.context = 0;
    if (!tenants_.empty()) {
      const Tenant& t = tenants_[static_cast<std::size_t>(uniform01(rng_) * static_cast<double>(tenants_.size()))];
      c.context = std::min<std::int64_t>(t.length, spec_.max_context);
      c.ids->assign(t.ids.begin(), t.ids.begin() + static_cast<std::ptrdiff_t>(c.context / spec_.block_tokens));
    }
    c.turns_left = turns_.sample(rng_);
    c.name = names("c" + std::to_string(started_++));
  }

  const PrefixSpec& spec_;
  std::mt19937_64 rng_;
  LengthSampler system_length_, turns_;
  std::vector<Tenant> tenants_;
  std::vector<Conversation> open_;
  std::uint64_t next_id_ = 0;
  std::int64_t started_ = 0;
};

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
  if (p.has("prefix")) {
    s.has_prefix = true;
    nlohmann::json prefix = nlohmann::json::object();
    p.get("prefix", prefix);
    const std::string at = where + ".prefix";
    JsonParams q(prefix, at);
    q.get("block_tokens", s.prefix.block_tokens);
    q.get("tenants", s.prefix.tenants);
    nlohmann::json system = nlohmann::json::object(), turns = nlohmann::json::object();
    q.get("system_tokens", system);
    q.get("turns", turns);
    s.prefix.system_tokens = parse_length(system, at + ".system_tokens", s.prefix.system_tokens);
    s.prefix.turns = parse_length(turns, at + ".turns", s.prefix.turns);
    q.get("conversations", s.prefix.conversations);
    q.get("max_context", s.prefix.max_context);
    q.done();
  }
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
  std::unique_ptr<Conversations> conversations;
  if (spec.has_prefix) conversations = std::make_unique<Conversations>(spec.prefix, derive_seed(seed, kPrefix));
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
    if (conversations) conversations->next_turn(r, r.input_tokens, session_names);
  }
  trace.source = "synthetic seed=" + std::to_string(seed) + " requests=" + std::to_string(spec.requests) +
                 " arrival=" + spec.arrival;
  return trace;
}

}  // namespace twinfer
