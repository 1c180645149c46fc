// A cost model whose step-time coefficients were fitted to measured steps (`twinfer calibrate`,
// `twinfer profile`), read from a JSON file.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/cost/cost_table.h"
#include "policies/cost/step_time.h"
#include "policies/cost_model.h"

namespace twinfer {

// File format, version 1 (see configs/README.md, "calibrated"):
//
//   {"format": "twinfer-cost-v1",
//    "meta": {...},                                   optional, free-form (what was measured, when)
//    "entries": [
//      {"device": "CPU", "model": "tiny-llm", "tp": 1, device profile name, model name, GPUs
//       "coefficients": {"step_us": 52.1, "sequence_us": 3.2, "linear_ps_per_flop": 41.7,
//                        "attention_ps_per_flop": 88.0, "weights_ps_per_byte": 0,
//                        "kv_ps_per_byte": 1.5, "spill_ps_per_byte": 20.0,
//                        "gemm_weights_ps_per_byte": 10.0, "cache_mb": 16, "contention": 0.08},
//                                                      every key of kFittedCoefficients, each >= 0
//       "fit": {...}}]}                                 optional, free-form (the fit's report)
//
// The coefficients are those of StepCoefficients in the units their names say (microseconds per
// step and per sequence, picoseconds per FLOP and per byte, megabytes of cache, a fraction). The tensor-parallel communication
// terms are not fitted: they come from each instance's gpu_link (set_comm_terms).
//
// Thread safety: immutable after construction.
class CalibratedCostModel : public CostModel {
 public:
  struct Entry {
    CostTableKey key;
    StepCoefficients coefficients;  // without the communication terms
  };

  // Parses `table`; `source` (the file name) prefixes every error message. Throws twinfer::Error
  // naming the source and the key path on a malformed table.
  CalibratedCostModel(const nlohmann::json& table, std::string source, bool static_padding = true);
  static CalibratedCostModel load(const std::string& path, bool static_padding = true);

  // Throw twinfer::Error naming the device, model, tp and file when the table has no entry for
  // the instance.
  TimeUs iteration_time_us(const InstanceSpec& instance, const IterationShape& shape) const override;
  void decode_times_us(const InstanceSpec& instance, std::int64_t seqs, std::int64_t context_tokens, std::int64_t steps,
                       std::vector<TimeUs>& out) const override;
  TimeUs batch_time_us(const InstanceSpec& instance, const RequestBatchShape& shape) const override;
  std::string name() const override { return "calibrated"; }
  double contention(const InstanceSpec& instance) const override;

  // The coefficients for an instance, communication terms included.
  StepCoefficients coefficients(const InstanceSpec& instance) const;
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::string source_;
  std::vector<Entry> entries_;
  bool static_padding_;
};

// The "coefficients" object of a cost file for `c` (communication terms left out).
nlohmann::json coefficients_json(const StepCoefficients& c);

}  // namespace twinfer
