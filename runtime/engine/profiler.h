// `twinfer profile`: measures a backend's steps where they happen, in the real worker engine loop,
// and fits a calibrated cost model (policies/cost/calibrated_cost_model.h) to them.
//
// For every distinct (device, model, tp) among the config's instances, a worker engine of one
// instance of it (the config's batcher, admission accept_all) is fed probe bursts, each submitted
// when the previous one has ended, so that a burst's steps are its own: n equal requests for
// n = 1, 2, 4, ... up to the batcher's max_num_seqs, at prompt lengths up to the model's
// max_context (decode batches at every size, single sequences at contexts across the whole range,
// prefill chunks with their cached prefix), then requests of random lengths submitted 2 ms apart
// (mixed prefill-decode steps). A warm-up burst runs first and is not kept. The whole set runs
// `repeats` times; the steps of identical shape across repeats give the run-to-run spread. Then,
// when the instance shares its host, every instance of the host runs its probes at once (unless
// `concurrent` is off), which measures how much they slow each other (the contention). Every step
// is logged as the runtime logs it (steps.csv) and the calibrated cost model is fitted to them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "serving/run_config.h"
#include "serving/step_log.h"
#include "core/time.h"

namespace twinfer::runtime {

struct ProbeOptions {
  int repeats = 3;
  int decode_tokens = 24;      // output tokens of each decode-sweep request
  int mixed_requests = 96;     // requests of random lengths per mixed burst
  std::uint64_t seed = 1;
  std::string device = "cpu";  // "cpu" or "cuda"
  bool pin_threads = false;
  bool concurrent = true;      // also probe every instance of a host at once (the contention)
  std::string steps_dir;       // when set, each instance's steps.csv is kept under it
  bool verbose = false;        // progress on stderr
};

// One burst of the probes: `count` requests of `input` + `output` tokens, submitted at once, or
// `gap_us` apart.
struct ProbeBurst {
  int count = 0;
  int input_tokens = 0;
  int output_tokens = 0;
  TimeUs gap_us = 0;
  std::vector<std::pair<int, int>> lengths;  // when not empty: (input, output) of each request
};

// The probe bursts for `instance` of `config`, warm-up first.
std::vector<ProbeBurst> probe_bursts(const RunConfig& config, const InstanceSpec& instance,
                                     const ProbeOptions& options);

// The measured steps of every (device, model, tp), instance names as in the config; each repeat's
// steps also go to `repeats_out` when given.
std::vector<LoggedStep> run_probes(const RunConfig& config, const ProbeOptions& options,
                                   std::vector<std::vector<LoggedStep>>* repeats_out = nullptr);

// The runtime's dispatch delay (sim.dispatch_us): the embedded runtime with the config's router
// serves requests far apart, each finding its worker idle; see dispatch_summary(). Null if none.
nlohmann::json measure_dispatch(const RunConfig& config, const ProbeOptions& options);

// Runs the probes, measures the dispatch delay (under meta.engine) and fits: a cost file (format twinfer-cost-v1) whose entries carry their fit
// report, and under "fit.repeat_spread" the spread of identical steps across repeats.
nlohmann::json profile_cost_model(const RunConfig& config, const ProbeOptions& options);

}  // namespace twinfer::runtime
