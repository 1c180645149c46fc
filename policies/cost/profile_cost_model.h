// A cost model that interpolates times measured by the runtime, read from a JSON table.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/cost/cost_table.h"
#include "policies/cost_model.h"

namespace twinfer {

// Table format, version 1 (see configs/README.md; configs/profiles/example_profile.json):
//
//   {"format": "twinfer-profile-v1",
//    "meta": {...},                                     optional, free-form (who measured, when)
//    "entries": [
//      {"device": "CPU", "model": "tiny-llm", "tp": 1,  device profile name, model name, GPUs
//       "iteration": {                                  optional: continuous-batching iterations
//         "prefill_tokens":        [p0, p1, ...],
//         "decode_seqs":           [s0, s1, ...],
//         "decode_context_tokens": [c0, c1, ...],
//         "time_us": [[[t(p0,s0,c0), t(p0,s0,c1), ...], [t(p0,s1,c0), ...]], [[t(p1,s0,c0), ...]]]},
//       "batch": {                                      optional: request-level batches
//         "batch_size":        [b0, ...],
//         "input_tokens":      [i0, ...],                 sum over the batch, after padding
//         "max_output_tokens": [o0, ...],
//         "time_us": [[[t(b0,i0,o0), ...]]]}}]}
//
// Each axis lists at least one non-negative value, strictly increasing; time_us is nested in axis
// order (first axis outermost) with exactly one value per grid point, each >= 0 microseconds.
// At most one entry per (device, model, tp), and each has "iteration", "batch" or both.
//
// A lookup interpolates multilinearly between the grid points around the query and extrapolates
// linearly from the outermost two points of an axis beyond its ends; an axis of one point is
// constant. Results are rounded to microseconds and clamped to at least 1. An iteration's
// prefill_prior_tokens and prefill_attn_pairs are not axes of version 1.
//
// Thread safety: immutable after construction.
class ProfileCostModel : public CostModel {
 public:
  // A 3-axis grid of measured times.
  struct Grid {
    std::array<std::vector<double>, 3> axes;
    std::vector<double> time_us;  // row-major over axes[0], axes[1], axes[2]
    double at(const std::array<double, 3>& point) const;
  };
  struct Entry {
    std::string device;
    std::string model;
    int tp = 1;
    std::optional<Grid> iteration;
    std::optional<Grid> batch;
  };

  // Parses `table`; `source` (the file name) prefixes every error message. Throws twinfer::Error
  // naming the source and the key path on a malformed table.
  ProfileCostModel(const nlohmann::json& table, std::string source);

  // Reads and parses the file at `path`. Throws twinfer::Error naming the file when it cannot be
  // read, is not JSON, or is malformed.
  static ProfileCostModel load(const std::string& path);

  // Throw twinfer::Error naming the device, model, tp and file when the table has no entry (or no
  // grid of that kind) for the instance.
  TimeUs iteration_time_us(const InstanceSpec& instance, const IterationShape& shape) const override;
  TimeUs batch_time_us(const InstanceSpec& instance, const RequestBatchShape& shape) const override;
  std::string name() const override { return "profile"; }

  // The entry for (device, model, tp), or nullptr.
  const Entry* find(const std::string& device, const std::string& model, int tp) const;
  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& source() const { return source_; }

 private:
  const Grid& grid_for(const InstanceSpec& instance, bool iteration) const;

  std::string source_;
  std::vector<Entry> entries_;
  std::vector<CostTableKey> keys_;
};

}  // namespace twinfer
