// Weighted traffic split: each version of a model takes a share of the requests, and the shares
// may follow a schedule (canary rollouts, blue/green switches).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/params.h"
#include "policies/traffic_split.h"

namespace twinfer {

// Weights are relative (normalized over the versions at pick time); a version without a weight gets
// 0. The weights in force at time t are those of the last schedule step with at_s <= t, or the base
// `weights` before the first step.
//
// A pick maps the request to a point u in [0, 1) and returns the version whose interval of the
// cumulative weights, laid out in `versions` order, contains u:
//   - sticky (default) and a non-empty Request::session: u is a fixed hash of the session, so a
//     session keeps its version while the weights stay, and when they change it moves only if a
//     boundary crossed its point. With two versions, shifting weight from one to the other moves
//     sessions only in that direction, never back; with more, the same holds for shifts between
//     neighbours in `versions` order.
//   - otherwise: u is drawn from a mt19937_64 seeded with `seed`.
// Only serving versions are laid out: a version that cannot take a request now (still loading in a
// hot swap, or scaled to zero) loses its share to the serving ones in proportion to theirs. When
// no serving version has a weight in force, the serving versions share equally (the traffic stays
// where it can be served until the weighted versions are ready); when none serves, all versions are
// laid out by weight.
//
// One weighted split serves one version family: every version a weight names must be one of
// `versions` at pick time, else pick() throws twinfer::Error naming the weight's key path and the
// valid versions.
class WeightedSplit : public TrafficSplit {
 public:
  using Weights = std::vector<std::pair<std::string, double>>;  // version -> weight >= 0, some > 0
  struct Step {
    TimeUs at_us = 0;  // JSON: "at_s", seconds
    Weights weights;
  };
  struct Options {
    Weights weights;          // before the first step; may be empty when the schedule starts at 0
    std::vector<Step> schedule;  // strictly increasing at_us
    bool sticky = true;
    std::uint64_t seed = 0;
    std::string where;        // key path of the parameters, for pick-time errors
  };
  // Reads "weights", "schedule" and "sticky", and checks them. Does not call p.done().
  static Options read_options(JsonParams& p, std::uint64_t seed);

  // REQUIRES: options as read_options() returns them (some weights in force at every time >= 0).
  explicit WeightedSplit(Options options);
  std::string pick(const Request& request, const std::vector<std::string>& versions, const std::vector<bool>& serving,
                   TimeUs now_us) override;
  // The largest normalized weight of `version` over the weights in force at from_us and at every
  // schedule step in (from_us, to_us].
  double max_share(const std::string& version, const std::vector<std::string>& versions, TimeUs from_us,
                   TimeUs to_us) const override;
  std::string name() const override { return "weighted"; }

  // The weights in force at `now_us`.
  const Weights& weights_at(TimeUs now_us) const;

 private:
  // Throws unless every weighted version is one of `versions`.
  void check_names(const std::vector<std::string>& versions) const;
  // check_names(), remembering the last list it passed.
  void validate_names(const std::vector<std::string>& versions);
  double point_of(const Request& request);

  Options options_;
  std::mt19937_64 rng_;
  std::vector<std::string> validated_versions_;
  std::vector<double> cumulative_;  // reused buffer
};

}  // namespace twinfer
