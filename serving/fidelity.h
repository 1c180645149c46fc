// How well a simulation predicts real runs of the same config, trace and seed: per-request errors
// and percentile errors of latency, TTFT and TPOT, beside the real runs' own run-to-run spread.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "serving/recorder.h"

namespace twinfer {

// Reads a run's requests.csv (as Recorder::write_requests_csv writes it). `ended` is set for every
// row that has an outcome; the worker's name goes to `workers` (one per request, "" for none) when
// given, and RequestRecord::worker stays -1. Throws twinfer::Error "<file>:<line>: <column>: ..."
std::vector<RequestRecord> read_requests_csv(const std::string& path, std::vector<std::string>* workers = nullptr);

// The three metrics of a request, in milliseconds; all NaN unless it completed, tpot NaN with
// one output token.
struct RequestMetrics {
  double latency = NAN, ttft = NAN, tpot = NAN;
};
RequestMetrics request_metrics(const RequestRecord& r);

// Compares `sim` with the real runs `real` (at least one; all of one trace: same ids). Requests
// completed in every run are compared. For each of latency_ms, ttft_ms and tpot_ms (requests with
// more than one output token):
//   p50, p90, p99, mean: {"real": mean over the real runs, "real_spread": the largest relative
//     deviation of one real run from that mean, "sim", "error": (sim - real) / real}
//   per_request_mape: mean over requests of |sim - real| / real, real being the request's mean over
//     the real runs; real_per_request_mape (two or more real runs): the same of each real run
//     against the mean of the others, averaged: the run-to-run spread per request.
// Also "requests" (compared), "outcomes" ({"real": [per run: {outcome: count}], "sim": {...}}).
nlohmann::json compare_runs(const std::vector<std::vector<RequestRecord>>& real, const std::vector<RequestRecord>& sim);

// The quantiles 0, 1, ..., 100 of each metric, real (mean over the runs of each quantile) and
// simulated, as CSV: metric,quantile,real,sim. For CDF plots (scripts/plot_fidelity.py).
std::string fidelity_cdf_csv(const std::vector<std::vector<RequestRecord>>& real, const std::vector<RequestRecord>& sim);

}  // namespace twinfer
