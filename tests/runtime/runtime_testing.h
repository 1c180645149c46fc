// Helpers for runtime tests: the tiny CPU config and small traces.
#pragma once

#include <string>
#include <vector>

#include "policies/run_config.h"
#include "traces/synthetic.h"
#include "traces/trace.h"

namespace twinfer::testing {

inline RunConfig cpu_tiny_config(const std::vector<std::string>& overrides = {}) {
  return load_run_config(std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json", overrides);
}

// `n` requests over about n / rate_rps seconds, short prompts and outputs.
inline Trace small_trace(int n, double rate_rps, std::uint64_t seed = 3, int output_mean = 12) {
  nlohmann::json spec = {{"requests", n},
                         {"rate_rps", rate_rps},
                         {"arrival", "poisson"},
                         {"input", {{"kind", "uniform"}, {"min", 8}, {"max", 120}}},
                         {"output", {{"kind", "uniform"}, {"min", 2}, {"max", 2 * output_mean}}}};
  return generate_synthetic(parse_synthetic_spec(spec, "test"), seed);
}

}  // namespace twinfer::testing
