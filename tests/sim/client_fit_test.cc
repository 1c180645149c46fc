// Fitting the simulator to client-side per-request logs: a log made by a known step model is
// fitted back from a different prior.
#include "sim/client_fit.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "policies/cost/step_time.h"
#include "serving/run_config.h"
#include "sim/simulator.h"
#include "tests/sim/sim_testing.h"
#include "traces/synthetic.h"

namespace twinfer {
namespace {

Trace workload(double rate, std::uint64_t seed) {
  SyntheticSpec spec;
  spec.requests = 160;
  spec.rate_rps = rate;
  spec.input = {"lognormal", 400, 1.0, 1.1, 8, 4000};
  spec.output = {"lognormal", 40, 0.8, 1.1, 2, 400};
  return generate_synthetic(spec, seed);
}

// A log of `trace` served by a cluster whose steps follow the roofline scaled by the factors.
ClientLog log_of(const nlohmann::json& base, const Trace& trace, const sim::ClientFitScales& truth,
                 const std::string& name) {
  // The truth is a cost file: the prior's coefficients with the factors applied.
  const RunConfig config = parse_run_config(base, "");
  const std::string dir = ::testing::TempDir() + "/client_fit_" + name;
  std::filesystem::create_directories(dir);
  nlohmann::json table = {{"format", "twinfer-cost-v1"}, {"entries", nlohmann::json::array()}};
  const StepCoefficients c = roofline_coefficients(config.cluster.instances[0], 0, 0, 200);
  nlohmann::json co = {{"step_us", c.step_s * 1e6 * truth.overhead},
                       {"sequence_us", c.sequence_s * 1e6 * truth.overhead},
                       {"linear_ps_per_flop", c.linear_s_per_flop * 1e12 * truth.compute},
                       {"attention_ps_per_flop", c.attention_s_per_flop * 1e12 * truth.compute},
                       {"weights_ps_per_byte", c.weights_s_per_byte * 1e12 * truth.memory},
                       {"kv_ps_per_byte", c.kv_s_per_byte * 1e12 * truth.memory},
                       {"spill_ps_per_byte", 0},
                       {"gemm_weights_ps_per_byte", 0},
                       {"cache_mb", 0},
                       {"contention", 0}};
  table["entries"].push_back({{"device", "H100"}, {"model", "m"}, {"tp", 1}, {"coefficients", co}});
  std::ofstream(dir + "/truth.json") << table.dump();
  nlohmann::json cfg = base;
  cfg["policies"]["cost_model"] = {{"name", "calibrated"}, {"path", dir + "/truth.json"}};
  cfg["sim"]["dispatch_us"] = truth.dispatch_us;
  sim::SimRunOptions opt;
  opt.out_dir = dir;
  sim::simulate(parse_run_config(cfg, ""), trace, opt);
  return read_client_log(dir + "/requests.csv");
}

TEST(ClientFit, RecoversTheStepModelThatMadeTheLog) {
  const nlohmann::json base = testing::small_config(2);
  const sim::ClientFitScales truth{1.7, 0.6, 1.5, 400};
  const ClientLog log = log_of(base, workload(60, 3), truth, "truth");
  sim::ClientFitOptions opt;
  const nlohmann::json table = sim::calibrate_from_client_logs(parse_run_config(base, ""), {log}, nullptr, opt);
  const auto& r = table["meta"]["client_fit"];
  EXPECT_EQ(r["prior"], "policies.cost_model (roofline)");
  const double before = r["objective"]["prior"], after = r["objective"]["fit"];
  EXPECT_GT(before, 0.2);
  EXPECT_LT(after, 0.02) << r.dump(1);
  EXPECT_NEAR(r["scales"]["compute"].get<double>(), truth.compute, 0.1 * truth.compute) << r.dump(1);
  EXPECT_NEAR(r["scales"]["memory"].get<double>(), truth.memory, 0.1 * truth.memory) << r.dump(1);
  EXPECT_NEAR(r["dispatch_us"].get<double>(), truth.dispatch_us, 0.25 * truth.dispatch_us) << r.dump(1);
  // The held-out requests (the last 30%) are predicted as well as the fitted ones.
  const auto& held = r["logs"][0]["fit"]["held_out"];
  EXPECT_EQ(held["requests"], 48);
  EXPECT_EQ(held["unmatched"], 0);
  EXPECT_LT(held["ttft_ms"]["per_request_mape"].get<double>(), 0.03) << held.dump(1);
  EXPECT_LT(held["tpot_ms"]["per_request_mape"].get<double>(), 0.03) << held.dump(1);
  // The file is a calibrated cost model with the fitted dispatch delay.
  EXPECT_EQ(table["format"], "twinfer-cost-v1");
  EXPECT_EQ(table["meta"]["engine"]["dispatch_us"], r["dispatch_us"]);
  ASSERT_EQ(table["entries"].size(), 1u);
  EXPECT_EQ(table["entries"][0]["device"], "H100");

  // The fitted model predicts the same deployment at another load, on other requests.
  const std::string dir = ::testing::TempDir() + "/client_fit_fitted";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/cost.json") << table.dump();
  const ClientLog other = log_of(base, workload(100, 11), truth, "other");
  nlohmann::json cfg = base;
  cfg["policies"]["cost_model"] = {{"name", "calibrated"}, {"path", dir + "/cost.json"}};
  cfg["sim"]["dispatch_us"] = table["meta"]["engine"]["dispatch_us"];
  sim::ClientFitOptions check;
  check.max_evaluations = 5;  // a few steps around the fit: its start is what is checked
  check.holdout_fraction = 0;
  const nlohmann::json again = sim::calibrate_from_client_logs(parse_run_config(cfg, ""), {other},
                                                               nullptr, check);
  EXPECT_LT(again["meta"]["client_fit"]["objective"]["prior"].get<double>(), 0.05) << again.dump(1);
}

TEST(ClientFit, OnlyARooflineOrCalibratedModelIsScaled) {
  testing::register_test_cost_model();
  nlohmann::json cfg = testing::small_config(1);
  cfg["policies"]["cost_model"] = "test_token_us";
  ClientLog log;
  log.trace = workload(10, 1);
  const std::string e = testing::error_of([&] {
    sim::calibrate_from_client_logs(parse_run_config(cfg, ""), {log}, nullptr, sim::ClientFitOptions{});
  });
  EXPECT_EQ(e, "policies.cost_model: fitting to client logs scales a roofline or calibrated model, not "
               "'test_token_us'; give a prior cost file (--cost)");
}

}  // namespace
}  // namespace twinfer
