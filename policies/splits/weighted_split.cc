#include "policies/splits/weighted_split.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <iterator>

#include "core/error.h"
#include "policies/routers/consistent_hash_router.h"
#include "policies/routers/router_candidates.h"

namespace twinfer {
namespace {

using nlohmann::json;

// A one-second schedule step is 1e6 us; 1e12 s (about 31700 years) keeps at_us far from overflow.
constexpr double kMaxAtSeconds = 1e12;

WeightedSplit::Weights parse_weights(const json& object, const std::string& where) {
  if (!object.is_object()) throw Error(where + ": expected an object of version weights, got " + object.dump());
  WeightedSplit::Weights weights;
  bool any_positive = false;
  for (auto it = object.begin(); it != object.end(); ++it) {
    const json& v = it.value();
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
      throw Error(where + "." + it.key() + ": expected a non-negative number, got " + v.dump());
    }
    weights.emplace_back(it.key(), v.get<double>());
    any_positive = any_positive || v.get<double>() > 0;
  }
  if (!any_positive) throw Error(where + ": needs at least one positive weight, got " + object.dump());
  return weights;
}

WeightedSplit::Step parse_step(const json& object, const std::string& where) {
  JsonParams p(object, where, {"weights"});
  double at_s = 0;
  p.require(p.has("at_s"), "at_s", "required");
  p.get("at_s", at_s);
  p.done();
  p.require(std::isfinite(at_s) && at_s >= 0 && at_s <= kMaxAtSeconds, "at_s",
            "must be in [0, 1e12] seconds, got " + format_number(at_s));
  p.require(p.has("weights"), "weights", "required");
  WeightedSplit::Step step;
  step.at_us = static_cast<TimeUs>(std::llround(at_s * 1e6));
  step.weights = parse_weights(object.at("weights"), where + ".weights");
  return step;
}

// The key path of weight `version` in the base weights (step < 0) or in schedule step `step`.
std::string weight_path(const std::string& where, int step, const std::string& version) {
  if (step < 0) return where + ".weights." + version;
  return where + ".schedule[" + std::to_string(step) + "].weights." + version;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// Decorrelates the split's point from consistent_hash's ring position of the same session, which
// is ring_hash(session) too (SplitMix64's finalizer over a salted value).
std::uint64_t remix(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

WeightedSplit::Options WeightedSplit::read_options(JsonParams& p, std::uint64_t seed) {
  Options opts;
  opts.seed = seed;
  opts.where = p.where();
  json weights;
  json schedule = json::array();
  p.get("weights", weights);
  p.get("schedule", schedule);
  p.get("sticky", opts.sticky);
  p.require(schedule.is_array(), "schedule", "expected an array of {\"at_s\", \"weights\"}, got " + schedule.dump());
  for (std::size_t i = 0; i < schedule.size(); ++i) {
    const std::string where = p.where() + ".schedule[" + std::to_string(i) + "]";
    opts.schedule.push_back(parse_step(schedule[i], where));
    if (i > 0 && opts.schedule[i].at_us <= opts.schedule[i - 1].at_us) {
      throw Error(where + ".at_s: steps must be in strictly increasing at_s");
    }
  }
  if (p.has("weights")) {
    opts.weights = parse_weights(weights, p.where() + ".weights");
  } else {
    const bool starts_at_zero = !opts.schedule.empty() && opts.schedule.front().at_us == 0;
    p.require(starts_at_zero, "weights", "required unless the schedule's first step is at_s 0");
  }
  return opts;
}

WeightedSplit::WeightedSplit(Options options) : options_(std::move(options)), rng_(options_.seed) {
  assert(!options_.weights.empty() || (!options_.schedule.empty() && options_.schedule.front().at_us == 0));
}

const WeightedSplit::Weights& WeightedSplit::weights_at(TimeUs now_us) const {
  auto after = std::upper_bound(options_.schedule.begin(), options_.schedule.end(), now_us,
                                [](TimeUs t, const Step& s) { return t < s.at_us; });
  if (after == options_.schedule.begin()) {
    // Without base weights the schedule starts at 0, so only a negative time lands here.
    return options_.weights.empty() ? options_.schedule.front().weights : options_.weights;
  }
  return std::prev(after)->weights;
}

void WeightedSplit::check_names(const std::vector<std::string>& versions) const {
  auto check = [&](const Weights& weights, int step) {
    for (const auto& w : weights) {
      if (std::find(versions.begin(), versions.end(), w.first) != versions.end()) continue;
      throw Error(weight_path(options_.where, step, w.first) + ": '" + w.first +
                  "' is not a version of this model; versions: " + joined(versions));
    }
  };
  check(options_.weights, -1);
  for (std::size_t i = 0; i < options_.schedule.size(); ++i) check(options_.schedule[i].weights, static_cast<int>(i));
}

void WeightedSplit::validate_names(const std::vector<std::string>& versions) {
  if (versions == validated_versions_) return;
  check_names(versions);
  validated_versions_ = versions;
}

double WeightedSplit::max_share(const std::string& version, const std::vector<std::string>& versions, TimeUs from_us,
                                TimeUs to_us) const {
  check_names(versions);
  auto share = [&](const Weights& weights) {
    double mine = 0, total = 0;
    for (const auto& w : weights) {
      total += w.second;
      if (w.first == version) mine += w.second;
    }
    return total > 0 ? mine / total : 0.0;
  };
  double best = share(weights_at(from_us));
  for (const Step& step : options_.schedule) {
    if (step.at_us > from_us && step.at_us <= to_us) best = std::max(best, share(step.weights));
  }
  return best;
}

double WeightedSplit::point_of(const Request& request) {
  if (options_.sticky && !request.session.empty()) {
    return static_cast<double>(remix(ring_hash(request.session.str())) >> 11) * 0x1.0p-53;
  }
  return uniform_unit(rng_);
}

std::string WeightedSplit::pick(const Request& request, const std::vector<std::string>& versions,
                                const std::vector<bool>& serving, TimeUs now_us) {
  assert(!versions.empty() && serving.size() == versions.size());
  validate_names(versions);
  const Weights& weights = weights_at(now_us);
  const bool any_serving = std::find(serving.begin(), serving.end(), true) != serving.end();
  auto lay_out = [&](bool serving_only, bool equal) {
    cumulative_.assign(versions.size(), 0.0);
    double total = 0;
    for (std::size_t i = 0; i < versions.size(); ++i) {
      if (!serving_only || serving[i]) {
        if (equal) total += 1;
        for (const auto& w : weights) {
          if (!equal && w.first == versions[i]) total += w.second;
        }
      }
      cumulative_[i] = total;
    }
    return total;
  };
  double total = lay_out(any_serving, false);
  if (total <= 0) total = lay_out(true, true);  // no weighted version serves: the serving ones share equally
  assert(total > 0);
  // Drawn before the scan so that unsticky picks consume one number each, whatever they pick.
  const double u = point_of(request) * total;
  std::size_t last_positive = 0;
  for (std::size_t i = 0; i < versions.size(); ++i) {
    const double lower = i == 0 ? 0.0 : cumulative_[i - 1];
    if (cumulative_[i] <= lower) continue;  // weight 0: never picked
    if (u < cumulative_[i]) return versions[i];
    last_positive = i;
  }
  return versions[last_positive];  // u rounded up to the total
}

}  // namespace twinfer
