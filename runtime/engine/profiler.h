// `twinfer profile`: measures a backend's iteration and batch times over a grid of shapes and
// writes them as a `profile` cost-model table (format twinfer-profile-v1, see
// policies/cost/profile_cost_model.h), which the simulator then reads.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serving/run_config.h"

namespace twinfer::runtime {

struct ProfileGrid {
  std::vector<double> prefill_tokens{0, 16, 64, 256, 512};
  std::vector<double> decode_seqs{0, 1, 4, 16};
  std::vector<double> decode_context_tokens{0, 256, 2048};
  std::vector<double> batch_size{1, 4, 8};
  std::vector<double> input_tokens{16, 256, 1024};  // sum over the batch
  std::vector<double> max_output_tokens{1, 8, 32};
  int repeats = 3;  // each point is the median of this many timed runs, after one warm-up
};

// One entry per distinct (device profile, model, tp) among the config's instances, measured on
// `device` ("cpu" or "cuda:N"). Progress goes to stderr when `verbose`.
nlohmann::json profile_backends(const RunConfig& config, const std::string& device, const ProfileGrid& grid,
                                bool verbose);

}  // namespace twinfer::runtime
