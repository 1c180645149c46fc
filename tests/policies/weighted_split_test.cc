#include "policies/splits/weighted_split.h"

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using nlohmann::json;
using testing::make_request;

const std::vector<std::string> kVersions = {"v1", "v2"};
const std::vector<bool> kBothServe = {true, true};
constexpr TimeUs kSecond = 1000000;

WeightedSplit::Options options_of(const json& params, std::uint64_t seed = 7) {
  JsonParams p(params, "policies.traffic_split (weighted)");
  auto opts = WeightedSplit::read_options(p, seed);
  p.done();
  return opts;
}

WeightedSplit split_of(const json& params, std::uint64_t seed = 7) { return WeightedSplit(options_of(params, seed)); }

std::string error_of(const json& params) {
  try {
    options_of(params);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

Request session_request(RequestId id, const std::string& session) {
  Request r = make_request(id);
  r.session = session;
  return r;
}

// How many of `n` picks (fresh sessions, or none) went to each version.
std::map<std::string, int> count_picks(WeightedSplit& split, const std::vector<std::string>& versions, int n,
                                       bool with_sessions, TimeUs now_us = 0) {
  std::map<std::string, int> counts;
  for (int i = 0; i < n; ++i) {
    Request r = with_sessions ? session_request(i, "session-" + std::to_string(i)) : make_request(i);
    ++counts[split.pick(r, versions, std::vector<bool>(versions.size(), true), now_us)];
  }
  return counts;
}

// Expects `count` of `n` Bernoulli(p) trials within 5 standard deviations of n * p.
void expect_binomial(int count, int n, double p) {
  const double sd = std::sqrt(n * p * (1 - p));
  EXPECT_NEAR(count, n * p, 5 * sd) << "p = " << p;
}

TEST(WeightedSplitTest, FractionsFollowTheNormalizedWeights) {
  constexpr int kN = 20000;
  const std::vector<std::string> versions = {"a", "b", "c"};
  for (bool with_sessions : {false, true}) {
    WeightedSplit split = split_of(json::parse(R"({"weights": {"a": 1, "b": 3, "c": 0}})"));
    auto counts = count_picks(split, versions, kN, with_sessions);
    expect_binomial(counts["a"], kN, 0.25);
    expect_binomial(counts["b"], kN, 0.75);
    EXPECT_EQ(counts["c"], 0);  // weight 0: never picked
    EXPECT_EQ(counts["a"] + counts["b"], kN);
  }
}

TEST(WeightedSplitTest, UnnamedVersionsGetNothingAndScaleDoesNotMatter) {
  WeightedSplit halves = split_of(json::parse(R"({"weights": {"a": 0.5, "c": 0.5}})"), 3);
  WeightedSplit twos = split_of(json::parse(R"({"weights": {"a": 2, "c": 2}})"), 3);
  const std::vector<std::string> versions = {"a", "b", "c"};
  int b_picks = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::vector<bool> all(3, true);
    std::string pick = halves.pick(make_request(i), versions, all, 0);
    EXPECT_EQ(pick, twos.pick(make_request(i), versions, all, 0)) << i;
    b_picks += pick == "b";
  }
  EXPECT_EQ(b_picks, 0);
}

TEST(WeightedSplitTest, TheSameSeedGivesTheSamePicks) {
  WeightedSplit a = split_of(json::parse(R"({"weights": {"v1": 1, "v2": 1}})"), 11);
  WeightedSplit b = split_of(json::parse(R"({"weights": {"v1": 1, "v2": 1}})"), 11);
  WeightedSplit other = split_of(json::parse(R"({"weights": {"v1": 1, "v2": 1}})"), 12);
  int differ = 0;
  for (int i = 0; i < 200; ++i) {
    std::string pa = a.pick(make_request(i), kVersions, kBothServe, 0);
    EXPECT_EQ(pa, b.pick(make_request(i), kVersions, kBothServe, 0));
    differ += pa != other.pick(make_request(i), kVersions, kBothServe, 0);
  }
  EXPECT_GT(differ, 0);  // the seed matters
}

TEST(WeightedSplitTest, ScheduleStepsTakeOverAtTheirTime) {
  WeightedSplit split = split_of(json::parse(R"({"weights": {"v1": 1},
      "schedule": [{"at_s": 10, "weights": {"v1": 1, "v2": 1}}, {"at_s": 20.5, "weights": {"v2": 1}}]})"));
  EXPECT_EQ(split.weights_at(0), (WeightedSplit::Weights{{"v1", 1}}));
  EXPECT_EQ(split.weights_at(10 * kSecond - 1), (WeightedSplit::Weights{{"v1", 1}}));
  EXPECT_EQ(split.weights_at(10 * kSecond), (WeightedSplit::Weights{{"v1", 1}, {"v2", 1}}));
  EXPECT_EQ(split.weights_at(20500000 - 1), (WeightedSplit::Weights{{"v1", 1}, {"v2", 1}}));
  EXPECT_EQ(split.weights_at(20500000), (WeightedSplit::Weights{{"v2", 1}}));
  EXPECT_EQ(split.weights_at(1000 * kSecond), (WeightedSplit::Weights{{"v2", 1}}));

  auto before = count_picks(split, kVersions, 100, false, 10 * kSecond - 1);
  EXPECT_EQ(before["v1"], 100);
  auto during = count_picks(split, kVersions, 2000, false, 10 * kSecond);
  expect_binomial(during["v2"], 2000, 0.5);
  auto after = count_picks(split, kVersions, 100, true, 20500000);
  EXPECT_EQ(after["v2"], 100);
}

TEST(WeightedSplitTest, AScheduleFromZeroNeedsNoBaseWeights) {
  WeightedSplit split = split_of(json::parse(R"({"schedule": [{"at_s": 0, "weights": {"v2": 1}},
                                                              {"at_s": 5, "weights": {"v1": 1}}]})"));
  EXPECT_EQ(split.pick(make_request(1), kVersions, kBothServe, 0), "v2");
  EXPECT_EQ(split.pick(make_request(2), kVersions, kBothServe, 5 * kSecond), "v1");
  EXPECT_EQ(split.name(), "weighted");
}

TEST(WeightedSplitTest, ASessionKeepsItsVersion) {
  WeightedSplit split = split_of(json::parse(R"({"weights": {"v1": 1, "v2": 1}})"));
  std::map<std::string, int> first_seen;
  for (int s = 0; s < 50; ++s) {
    const std::string session = "user-" + std::to_string(s);
    const std::string first = split.pick(session_request(0, session), kVersions, kBothServe, 0);
    for (int k = 1; k < 20; ++k) {
      // Unsticky picks in between move the generator; the session's point must not depend on it.
      split.pick(make_request(k), kVersions, kBothServe, 0);
      EXPECT_EQ(split.pick(session_request(k, session), kVersions, kBothServe, k * kSecond), first) << session;
    }
    ++first_seen[first];
  }
  EXPECT_GT(first_seen["v1"], 0);
  EXPECT_GT(first_seen["v2"], 0);
  // A split with another seed places sessions at the same points.
  WeightedSplit reseeded = split_of(json::parse(R"({"weights": {"v1": 1, "v2": 1}})"), 999);
  WeightedSplit original = split_of(json::parse(R"({"weights": {"v1": 1, "v2": 1}})"));
  for (int s = 0; s < 50; ++s) {
    Request r = session_request(s, "user-" + std::to_string(s));
    EXPECT_EQ(reseeded.pick(r, kVersions, kBothServe, 0), original.pick(r, kVersions, kBothServe, 0));
  }
}

TEST(WeightedSplitTest, NotStickyOrNoSessionDrawsAtRandom) {
  WeightedSplit split = split_of(json::parse(R"({"weights": {"v1": 1, "v2": 1}, "sticky": false})"));
  std::map<std::string, int> counts;
  for (int i = 0; i < 100; ++i) ++counts[split.pick(session_request(i, "same"), kVersions, kBothServe, 0)];
  EXPECT_GT(counts["v1"], 10);
  EXPECT_GT(counts["v2"], 10);
}

TEST(WeightedSplitTest, RolloutMovesSessionsOnlyForward) {
  // v2's share grows 0 -> 10% -> 30% -> 60% -> 100%, one step a minute.
  WeightedSplit split = split_of(json::parse(R"({"weights": {"v1": 1, "v2": 0}, "schedule": [
      {"at_s": 60, "weights": {"v1": 0.9, "v2": 0.1}}, {"at_s": 120, "weights": {"v1": 0.7, "v2": 0.3}},
      {"at_s": 180, "weights": {"v1": 0.4, "v2": 0.6}}, {"at_s": 240, "weights": {"v2": 1}}]})"));
  constexpr int kSessions = 5000;
  const double shares[] = {0, 0.1, 0.3, 0.6, 1};
  std::vector<bool> on_v2(kSessions, false);
  for (int step = 0; step < 5; ++step) {
    int count = 0;
    for (int s = 0; s < kSessions; ++s) {
      bool v2 = split.pick(session_request(s, "s" + std::to_string(s)), kVersions, kBothServe, step * 60 * kSecond) == "v2";
      EXPECT_FALSE(on_v2[s] && !v2) << "session s" << s << " moved back to v1 at step " << step;
      on_v2[s] = v2;
      count += v2;
    }
    if (shares[step] == 0 || shares[step] == 1) {
      EXPECT_EQ(count, shares[step] * kSessions);
    } else {
      expect_binomial(count, kSessions, shares[step]);
    }
  }
  // A rollback (v2 -> v1) moves sessions only the other way.
  WeightedSplit forward = split_of(json::parse(R"({"weights": {"v1": 0.3, "v2": 0.7}})"));
  WeightedSplit back = split_of(json::parse(R"({"weights": {"v1": 0.8, "v2": 0.2}})"));
  for (int s = 0; s < kSessions; ++s) {
    Request r = session_request(s, "s" + std::to_string(s));
    if (forward.pick(r, kVersions, kBothServe, 0) == "v1") {
      EXPECT_EQ(back.pick(r, kVersions, kBothServe, 0), "v1") << s;
    }
  }
}

TEST(WeightedSplitTest, AWeightForAnUnknownVersionFailsAtPick) {
  WeightedSplit split = split_of(json::parse(R"({"weights": {"v1": 1},
                                                "schedule": [{"at_s": 1, "weights": {"v3": 1}}]})"));
  try {
    split.pick(make_request(1), kVersions, kBothServe, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "policies.traffic_split (weighted).schedule[0].weights.v3: 'v3' is not a version of this model; "
                 "versions: v1, v2");
  }
  WeightedSplit base = split_of(json::parse(R"({"weights": {"v9": 1}})"));
  try {
    base.pick(make_request(1), kVersions, kBothServe, 0);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("policies.traffic_split (weighted).weights.v9:"), std::string::npos)
        << e.what();
  }
  // Valid for another family's versions.
  EXPECT_EQ(base.pick(make_request(1), {"v8", "v9"}, kBothServe, 0), "v9");
}

TEST(WeightedSplitTest, AVersionThatDoesNotServeLosesItsShareToTheServingOnes) {
  WeightedSplit split = split_of(json::parse(R"({"weights": {"a": 1, "b": 1, "c": 2}})"));
  const std::vector<std::string> versions = {"a", "b", "c"};
  constexpr int kN = 4000;
  std::map<std::string, int> counts;
  for (int i = 0; i < kN; ++i) ++counts[split.pick(make_request(i), versions, {true, false, true}, 0)];
  EXPECT_EQ(counts["b"], 0);
  expect_binomial(counts["a"], kN, 1.0 / 3);  // a : c = 1 : 2 over what serves
  EXPECT_EQ(counts["a"] + counts["c"], kN);
}

TEST(WeightedSplitTest, WhenNoWeightedVersionServesTheServingOnesShareEqually) {
  // A hot swap: the weights already moved to v2, which is still loading.
  WeightedSplit split = split_of(json::parse(R"({"weights": {"v1": 100},
                                                "schedule": [{"at_s": 60, "weights": {"v2": 100}}]})"));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(split.pick(make_request(i), kVersions, {true, false}, 61 * kSecond), "v1");
    EXPECT_EQ(split.pick(make_request(i), kVersions, {true, true}, 61 * kSecond), "v2");
  }
  const std::vector<std::string> three = {"a", "b", "c"};
  WeightedSplit only_c = split_of(json::parse(R"({"weights": {"c": 1}})"));
  std::map<std::string, int> counts;
  constexpr int kN = 4000;
  for (int i = 0; i < kN; ++i) ++counts[only_c.pick(make_request(i), three, {true, true, false}, 0)];
  expect_binomial(counts["a"], kN, 0.5);
  EXPECT_EQ(counts["a"] + counts["b"], kN);
  // Nothing serves: the weights in force decide (the request waits for c).
  EXPECT_EQ(only_c.pick(make_request(1), three, {false, false, false}, 0), "c");
}

TEST(WeightedSplitTest, MaxShareIsTheLargestNormalizedWeightOverAWindow) {
  WeightedSplit split = split_of(json::parse(R"({"weights": {"v1": 100},
      "schedule": [{"at_s": 10, "weights": {"v1": 90, "v2": 10}}, {"at_s": 20, "weights": {"v1": 1, "v2": 1}},
                   {"at_s": 30, "weights": {"v2": 3}}]})"));
  EXPECT_DOUBLE_EQ(split.max_share("v2", kVersions, 0, 9 * kSecond), 0.0);
  EXPECT_DOUBLE_EQ(split.max_share("v2", kVersions, 0, 10 * kSecond), 0.1);  // the step at the window's end counts
  EXPECT_DOUBLE_EQ(split.max_share("v2", kVersions, 12 * kSecond, 25 * kSecond), 0.5);
  EXPECT_DOUBLE_EQ(split.max_share("v2", kVersions, 35 * kSecond, 35 * kSecond), 1.0);
  EXPECT_DOUBLE_EQ(split.max_share("v1", kVersions, 0, 40 * kSecond), 1.0);
  EXPECT_DOUBLE_EQ(split.max_share("v1", kVersions, 25 * kSecond, 40 * kSecond), 0.5);
  EXPECT_DOUBLE_EQ(split.max_share("v1", kVersions, 30 * kSecond, 1000 * kSecond), 0.0);
  EXPECT_THROW(split.max_share("v1", {"v1", "v3"}, 0, 0), Error);  // v2 is not a version of this family
}

TEST(WeightedSplitTest, BadParametersNameTheirKey) {
  const std::string where = "policies.traffic_split (weighted)";
  EXPECT_EQ(error_of(json::object()), where + ".weights: required unless the schedule's first step is at_s 0");
  EXPECT_EQ(error_of(json::parse(R"({"schedule": [{"at_s": 5, "weights": {"v1": 1}}]})")),
            where + ".weights: required unless the schedule's first step is at_s 0");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": -1, "v2": 1}})")),
            where + ".weights.v1: expected a non-negative number, got -1");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": "half"}})")),
            where + ".weights.v1: expected a non-negative number, got \"half\"");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": 0, "v2": 0}})")),
            where + ".weights: needs at least one positive weight, got {\"v1\":0,\"v2\":0}");
  EXPECT_EQ(error_of(json::parse(R"({"weights": [1, 2]})")),
            where + ".weights: expected an object of version weights, got [1,2]");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": 1}, "schedule": [{"at_s": 2, "weights": {"v1": 1}},
                                                                        {"at_s": 2, "weights": {"v2": 1}}]})")),
            where + ".schedule[1].at_s: steps must be in strictly increasing at_s");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": 1}, "schedule": [{"at_s": -1, "weights": {"v1": 1}}]})")),
            where + ".schedule[0].at_s: must be in [0, 1e12] seconds, got -1");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": 1}, "schedule": [{"at_s": 1}]})")),
            where + ".schedule[0].weights: required");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": 1}, "schedule": [{"at": 1, "weights": {"v1": 1}}]})")),
            where + ".schedule[0].at_s: required");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": 1}, "schedule": [{"at_s": 1, "weights": {"v1": 0}}]})")),
            where + ".schedule[0].weights: needs at least one positive weight, got {\"v1\":0}");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": 1}, "schedule": {"at_s": 1}})")),
            where + ".schedule: expected an array of {\"at_s\", \"weights\"}, got {\"at_s\":1}");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": 1}, "sticky": 1})")),
            where + ".sticky: expected a boolean, got 1");
  EXPECT_EQ(error_of(json::parse(R"({"weights": {"v1": 1}, "weight": {"v1": 1}})")),
            where + ": unknown key 'weight'; valid keys: schedule, sticky, weights");
}

}  // namespace
}  // namespace twinfer
