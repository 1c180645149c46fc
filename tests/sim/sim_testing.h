// Helpers for simulator tests: in-memory configs, a cost model with exact service times, files.
#pragma once

#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "policies/registry.h"
#include "serving/run_config.h"
#include "tests/testing.h"

namespace twinfer::testing {

// Service times that are exactly the token counts in microseconds: a request batch takes
// sum(input tokens) us; an iteration takes prefill tokens + decode sequences us. Registered as
// cost model "test_token_us" for the simulator's child processes to build by name.
class TokenMicrosCostModel : public CostModel {
 public:
  TimeUs iteration_time_us(const InstanceSpec&, const IterationShape& s) const override {
    return s.prefill_tokens + s.decode_seqs;
  }
  TimeUs batch_time_us(const InstanceSpec&, const RequestBatchShape& s) const override { return s.input_tokens; }
  std::string name() const override { return "test_token_us"; }
};

inline void register_test_cost_model() {
  if (cost_model_registry().contains("test_token_us")) return;
  cost_model_registry().add("test_token_us", [](JsonParams& p, const PolicyContext&) {
    p.done();
    return std::make_unique<TokenMicrosCostModel>();
  });
}

// One host with `workers` H100s, each running one instance of a 1B model; no network.
inline nlohmann::json small_config(int workers = 1) {
  auto c = nlohmann::json::parse(R"({
    "cluster": {
      "models": {"m": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16}},
      "hosts": [{"name": "h", "device": "H100", "gpus": 8, "instances": [{"model": "m", "tp": 1, "count": 1}]}]
    },
    "policies": {"admission": "accept_all", "router": "round_robin", "batcher": "continuous", "cost_model": "roofline"},
    "sim": {"network": "none", "timeline": false}
  })");
  c["cluster"]["hosts"][0]["instances"][0]["count"] = workers;
  return c;
}

}  // namespace twinfer::testing
