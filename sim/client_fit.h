// Fitting the simulator to what clients measured (`twinfer calibrate --client-log`): when an
// engine's steps cannot be logged (another engine, a deployment seen from outside), its
// per-request TTFT and TPOT are what there is. The simulator replays each log's requests on the
// config's cluster, and a derivative-free search (Nelder-Mead) scales the step model until the
// simulated requests match the measured ones.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>

#include "serving/client_log.h"
#include "serving/run_config.h"

namespace twinfer::sim {

struct ClientFitOptions {
  // The last share of each log's requests (by arrival) is held out: simulated with the rest but
  // not fitted to, and reported apart. 0: none.
  double holdout_fraction = 0.3;
  int max_evaluations = 1000;  // simulations of the whole set of logs
  int span_rounds = 12;        // refits of the step model to the requests' spans (0: search only)
  std::uint64_t seed = 1;
  bool verbose = false;       // one line per simulation on stderr
  // Runs first in each simulation's forked child (see SimRunOptions::in_child); may be empty.
  std::function<void()> in_child;
};

// The fitted parameters, each a factor on the prior (dispatch_us is absolute).
struct ClientFitScales {
  double compute = 1;   // linear, attention and matrix-matrix weights terms
  double memory = 1;    // weights, KV and spill byte terms
  double overhead = 1;  // per-step and per-sequence overheads
  double dispatch_us = 0;
};

// Fits `config`'s cluster to `logs` (every log a separate run of the same deployment; the
// config's router, batcher and limits are the deployment's). The step model starts from `prior`:
// a cost file (format twinfer-cost-v1, with an entry for each instance of the config), or, when
// null, the config's cost model, which must then be "roofline" or "calibrated".
//
// The objective is the mean absolute percentage error of each fitted request's TTFT plus that of
// its TPOT, over the logs weighted by requests; a request completed in the log and not in the
// simulation counts as a 100% error. Two phases, the best point of each kept:
//   1. Span refits: simulate with the current model (steps logged); each fitted request's wait for
//      its first token and its decode are spans of simulated time filled by steps of its worker;
//      refit every coefficient of the step model (fit_span_coefficients) and the dispatch delay
//      (sim.dispatch_us: the handoff from client to worker that client-side TTFT includes) so that
//      those steps add up to the measured times; repeat with the refitted model (the batches change
//      with the step times) until the objective stops falling or span_rounds are done. Skipped
//      for request-level batchers, whose batches are not cut into steps.
//   2. A Nelder-Mead search over four factors on phase 1's model: its compute terms, its memory
//      terms, its overheads, and the dispatch delay, restarted from its best point while that
//      improves, within max_evaluations simulations in all.
// Returns the cost file: the coefficients, meta.engine.dispatch_us, and meta.client_fit with both
// phases' objectives, the factors, and, for the prior and the fit, per log and for the fitted and
// held-out requests, the errors of latency, TTFT and TPOT (compare_runs). Throws twinfer::Error on
// a prior without an entry for an instance, on a profile cost model, and when a simulation fails.
nlohmann::json calibrate_from_client_logs(const RunConfig& config, const std::vector<ClientLog>& logs,
                                          const nlohmann::json& prior, const ClientFitOptions& options);

}  // namespace twinfer::sim
