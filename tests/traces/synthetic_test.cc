#include "traces/synthetic.h"

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "tests/traces/trace_test_files.h"

namespace twinfer {
namespace {

using nlohmann::json;
using testing::error_of;

struct GapStats {
  double rate_rps = 0;
  double cv = 0;
};

GapStats gap_stats(const Trace& t) {
  const std::size_t gaps = t.requests.size() - 1;
  double sum = 0, sum_sq = 0;
  for (std::size_t i = 1; i < t.requests.size(); ++i) {
    const double gap_s = s_from_us(t.requests[i].arrival_us - t.requests[i - 1].arrival_us);
    sum += gap_s;
    sum_sq += gap_s * gap_s;
  }
  const double mean = sum / gaps;
  return {1.0 / mean, std::sqrt(sum_sq / gaps - mean * mean) / mean};
}

double mean_input(const Trace& t) {
  double sum = 0;
  for (const Request& r : t.requests) sum += r.input_tokens;
  return sum / t.requests.size();
}

SyntheticSpec spec_of(const json& j) { return parse_synthetic_spec(j, "w"); }

TEST(GenerateSynthetic, SameSeedGivesTheSameTraceAndOtherSeedsDiffer) {
  const SyntheticSpec spec = spec_of({{"requests", 500}, {"arrival", "gamma"}, {"cv", 3}, {"models", {"a", "b"}},
                                      {"priorities", {0, 1}}, {"sessions", 10}, {"deadline_ms", 100}});
  const Trace a = generate_synthetic(spec, 11), b = generate_synthetic(spec, 11), c = generate_synthetic(spec, 12);
  ASSERT_EQ(a.requests.size(), 500u);
  int differing_arrivals = 0, differing_inputs = 0;
  for (std::size_t i = 0; i < a.requests.size(); ++i) {
    const Request &x = a.requests[i], &y = b.requests[i];
    ASSERT_EQ(x.arrival_us, y.arrival_us);
    ASSERT_EQ(x.input_tokens, y.input_tokens);
    ASSERT_EQ(x.output_tokens, y.output_tokens);
    ASSERT_EQ(x.model, y.model);
    ASSERT_EQ(x.priority, y.priority);
    ASSERT_EQ(x.deadline_us, y.deadline_us);
    ASSERT_EQ(x.session, y.session);
    differing_arrivals += x.arrival_us != c.requests[i].arrival_us;
    differing_inputs += x.input_tokens != c.requests[i].input_tokens;
  }
  EXPECT_GT(differing_arrivals, 400);
  EXPECT_GT(differing_inputs, 400);
}

TEST(GenerateSynthetic, StartsAtZeroWithIdsInArrivalOrder) {
  const Trace t = generate_synthetic(SyntheticSpec{}, 1);
  ASSERT_EQ(t.requests.size(), 1000u);
  EXPECT_EQ(t.requests[0].arrival_us, 0);
  for (std::size_t i = 0; i < t.requests.size(); ++i) {
    ASSERT_EQ(t.requests[i].id, i);
    if (i > 0) {
      ASSERT_GE(t.requests[i].arrival_us, t.requests[i - 1].arrival_us);
    }
    ASSERT_EQ(t.requests[i].model, "");
    ASSERT_EQ(t.requests[i].deadline_us, kNever);
  }
  EXPECT_EQ(t.source, "synthetic seed=1 requests=1000 arrival=poisson");
}

TEST(GenerateSynthetic, PoissonHasTheRateAndCvOne) {
  const GapStats s = gap_stats(generate_synthetic(spec_of({{"requests", 200'001}, {"rate_rps", 50}}), 21));
  EXPECT_NEAR(s.rate_rps / 50, 1.0, 0.03);
  EXPECT_NEAR(s.cv, 1.0, 0.05);
}

TEST(GenerateSynthetic, GammaHasTheRateAndTheBurstiness) {
  const GapStats s =
      gap_stats(generate_synthetic(spec_of({{"requests", 200'001}, {"rate_rps", 50}, {"arrival", "gamma"}, {"cv", 2}}), 22));
  EXPECT_NEAR(s.rate_rps / 50, 1.0, 0.03);
  EXPECT_NEAR(s.cv / 2, 1.0, 0.05);
}

TEST(GenerateSynthetic, LognormalLengthsHaveTheirMean) {
  const json spec = {{"requests", 200'000}, {"input", {{"kind", "lognormal"}, {"mean", 800}, {"sigma", 1.0}}}};
  EXPECT_NEAR(mean_input(generate_synthetic(spec_of(spec), 23)) / 800, 1.0, 0.03);
}

TEST(GenerateSynthetic, ExponentialAndUniformLengthsHaveTheirMeans) {
  const json exp_spec = {{"requests", 200'000}, {"input", {{"kind", "exponential"}, {"mean", 300}}}};
  EXPECT_NEAR(mean_input(generate_synthetic(spec_of(exp_spec), 24)) / 300, 1.0, 0.03);
  const json uniform_spec = {{"requests", 100'000}, {"input", {{"kind", "uniform"}, {"min", 10}, {"max", 20}}}};
  const Trace t = generate_synthetic(spec_of(uniform_spec), 25);
  std::set<std::int32_t> seen;
  for (const Request& r : t.requests) seen.insert(r.input_tokens);
  EXPECT_EQ(seen, (std::set<std::int32_t>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}));
  EXPECT_NEAR(mean_input(t), 15.0, 0.1);
}

TEST(GenerateSynthetic, LengthsAreClampedToMinAndMax) {
  const json spec = {{"requests", 20'000},
                     {"input", {{"kind", "lognormal"}, {"mean", 100}, {"sigma", 2.0}, {"min", 50}, {"max", 150}}},
                     {"output", {{"kind", "zipf"}, {"alpha", 1.5}, {"min", 3}, {"max", 9}}}};
  const Trace t = generate_synthetic(spec_of(spec), 26);
  std::int32_t lowest = 1 << 30, highest = 0, lowest_out = 1 << 30, highest_out = 0;
  for (const Request& r : t.requests) {
    lowest = std::min(lowest, r.input_tokens);
    highest = std::max(highest, r.input_tokens);
    lowest_out = std::min(lowest_out, r.output_tokens);
    highest_out = std::max(highest_out, r.output_tokens);
  }
  // With sigma 2 both bounds are reached often, and nothing passes them.
  EXPECT_EQ(lowest, 50);
  EXPECT_EQ(highest, 150);
  EXPECT_EQ(lowest_out, 3);
  EXPECT_EQ(highest_out, 9);
}

TEST(GenerateSynthetic, ConstantLengthsAreExact) {
  const json spec = {{"requests", 10}, {"input", {{"kind", "constant"}, {"mean", 64}}},
                     {"output", {{"kind", "constant"}, {"mean", 0}, {"min", 0}}}};
  for (const Request& r : generate_synthetic(spec_of(spec), 27).requests) {
    EXPECT_EQ(r.input_tokens, 64);
    EXPECT_EQ(r.output_tokens, 0);
  }
}

TEST(GenerateSynthetic, ModelsPrioritiesSessionsAndDeadlines) {
  const json spec = {{"requests", 40'000}, {"models", {"small", "large"}}, {"model_weights", {1, 3}},
                     {"priorities", {0, 5}}, {"priority_weights", {9, 1}}, {"sessions", 4}, {"deadline_ms", 2.5}};
  const Trace t = generate_synthetic(spec_of(spec), 28);
  std::map<std::string, int> models, sessions;
  int high_priority = 0;
  for (const Request& r : t.requests) {
    ++models[r.model];
    ++sessions[r.session];
    high_priority += r.priority == 5;
    ASSERT_TRUE(r.priority == 0 || r.priority == 5);
    ASSERT_EQ(r.deadline_us, r.arrival_us + 2500);
  }
  EXPECT_EQ(models.size(), 2u);
  EXPECT_NEAR(models["large"] / 40'000.0, 0.75, 0.01);
  EXPECT_NEAR(high_priority / 40'000.0, 0.1, 0.01);
  EXPECT_EQ(sessions.size(), 4u);
  for (const char* key : {"s0", "s1", "s2", "s3"}) EXPECT_NEAR(sessions[key] / 40'000.0, 0.25, 0.015) << key;
}

TEST(GenerateSynthetic, EachAttributeHasItsOwnStream) {
  const Trace slow = generate_synthetic(spec_of({{"requests", 100}, {"rate_rps", 1}}), 29);
  const Trace fast = generate_synthetic(spec_of({{"requests", 100}, {"rate_rps", 100}, {"models", {"m"}}}), 29);
  for (std::size_t i = 0; i < 100; ++i) {
    ASSERT_EQ(slow.requests[i].input_tokens, fast.requests[i].input_tokens);
    ASSERT_EQ(slow.requests[i].output_tokens, fast.requests[i].output_tokens);
  }
  EXPECT_NEAR(static_cast<double>(slow.requests[99].arrival_us) / fast.requests[99].arrival_us, 100.0, 1e-3);
}

TEST(ParseSyntheticSpec, ReadsEveryKey) {
  const SyntheticSpec s = spec_of(
      {{"requests", 7}, {"rate_rps", 2.5}, {"arrival", "gamma"}, {"cv", 0.5},
       {"input", {{"kind", "zipf"}, {"alpha", 2.0}, {"min", 2}, {"max", 30}}},
       {"output", {{"kind", "lognormal"}, {"mean", 50}, {"sigma", 0.3}}}, {"models", {"a"}}, {"model_weights", {2}},
       {"priorities", {1, 2}}, {"priority_weights", {1, 1}}, {"deadline_ms", 30}, {"sessions", 3}});
  EXPECT_EQ(s.requests, 7);
  EXPECT_EQ(s.rate_rps, 2.5);
  EXPECT_EQ(s.arrival, "gamma");
  EXPECT_EQ(s.cv, 0.5);
  EXPECT_EQ(s.input.kind, "zipf");
  EXPECT_EQ(s.input.alpha, 2.0);
  EXPECT_EQ(s.input.min, 2);
  EXPECT_EQ(s.input.max, 30);
  EXPECT_EQ(s.output.kind, "lognormal");
  EXPECT_EQ(s.output.mean, 50);
  EXPECT_EQ(s.output.sigma, 0.3);
  EXPECT_EQ(s.output.max, 1 << 20);  // left at its default
  EXPECT_EQ(s.models, std::vector<std::string>{"a"});
  EXPECT_EQ(s.model_weights, std::vector<double>{2});
  EXPECT_EQ(s.priorities, (std::vector<int>{1, 2}));
  EXPECT_EQ(s.deadline_ms, 30);
  EXPECT_EQ(s.sessions, 3);
}

TEST(ParseSyntheticSpec, RejectsUnknownKeysAndBadValuesByPath) {
  auto error = [](const json& j) { return error_of([&] { spec_of(j); }); };
  EXPECT_EQ(error({{"rps", 3}}).rfind("w: unknown key 'rps'; valid keys: ", 0), 0u);
  EXPECT_EQ(error({{"input", {{"kind", "lognormal"}, {"meen", 3}}}}).rfind("w.input: unknown key 'meen'", 0), 0u);
  EXPECT_EQ(error({{"requests", "many"}}), "w.requests: expected an integer, got \"many\"");
  EXPECT_EQ(error({{"requests", 0}}), "w.requests: must be in [1, 1000000000]");
  EXPECT_EQ(error({{"rate_rps", -1}}), "w.rate_rps: must be > 0");
  EXPECT_EQ(error({{"arrival", "weibull"}}), "w.arrival: unknown arrival process 'weibull'; valid: poisson, gamma");
  EXPECT_EQ(error({{"cv", 2}}), "w.cv: applies only to gamma arrivals (poisson has cv 1)");
  EXPECT_EQ(error({{"output", {{"kind", "normal"}}}}),
            "w.output.kind: unknown kind 'normal'; valid kinds: constant, uniform, exponential, lognormal, zipf");
  EXPECT_EQ(error({{"input", {{"kind", "uniform"}, {"sigma", 1}}}}), "w.input.sigma: does not apply to kind 'uniform'");
  EXPECT_EQ(error({{"input", {{"kind", "uniform"}, {"min", 5}, {"max", 4}}}}), "w.input.max: must be >= min");
  EXPECT_EQ(error({{"input", {{"kind", "zipf"}, {"min", 0}}}}), "w.input.min: must be >= 1 for zipf");
  EXPECT_EQ(error({{"models", {"a", "b"}}, {"model_weights", {1}}}), "w.model_weights: needs one weight per entry of models");
  EXPECT_EQ(error({{"priorities", {1}}, {"priority_weights", {0}}}), "w.priority_weights: weights must not all be 0");
}

TEST(GenerateSynthetic, RejectsAnInvalidSpecBuiltInCode) {
  SyntheticSpec spec;
  spec.input.kind = "lognormal";
  spec.input.mean = -1;
  EXPECT_EQ(error_of([&] { generate_synthetic(spec, 1); }),
            "synthetic.input.mean: must be positive (a constant may be 0)");
}

// traces/data/default_trace.csv is generated from traces/data/default_trace.json; this keeps the
// two in step (and pins the generator's output: any change to it shows up here).
TEST(DefaultTrace, IsTheGeneratorsOutputForItsSpec) {
  const std::string dir = std::string(TWINFER_SOURCE_DIR) + "/traces/data/";
  const json file = json::parse(testing::read_text(dir + "default_trace.json"));
  const Trace generated = generate_synthetic(spec_of(file.at("spec")), file.at("seed").get<std::uint64_t>());
  const char* update = std::getenv("TWINFER_UPDATE_DEFAULT_TRACE");
  if (update && std::string(update) == "1") write_trace(generated, dir + "default_trace.csv");
  const std::string fresh = testing::write_temp_file("default_trace.csv", "");
  write_trace(generated, fresh);
  EXPECT_TRUE(testing::read_text(fresh) == testing::read_text(dir + "default_trace.csv"))
      << "default_trace.csv differs from its spec; regenerate it (see default_trace.json)";
}

}  // namespace
}  // namespace twinfer
