// Fits the step-time model's coefficients (step_time.h) to measured steps: non-negative least
// squares of relative errors, with the roofline's max(compute, memory) handled by assigning each
// step to the term that bounds it and refitting until the assignment settles.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/cost/step_time.h"

namespace twinfer {

// One measured iteration of an instance.
struct MeasuredStep {
  StepWork work;
  double seconds = 0;
  // How busy the other instances of its host were during the step: the sum of their busy time
  // within it over (duration * other instances), in [0, 1]. 0 with no other instance.
  double overlap = 0;
};

struct FitOptions {
  // Every holdout_every-th step (in the order given) is held out of the fit and used to measure
  // its error; 0 fits on all steps and reports no held-out error.
  int holdout_every = 5;
  int max_rounds = 30;        // regime reassignments per start
  double min_step_s = 10e-6;  // steps are weighted by 1 / max(measured, this): relative errors
  double alone_below = 0.05;  // steps with less overlap count as run alone
};

// Errors of a fit on a set of steps (absolute percentage errors of each step's time).
struct FitErrors {
  std::int64_t steps = 0;
  double mape = 0;            // mean
  double median_ape = 0;
  double p90_ape = 0;
  double total_error = 0;     // sum of predicted / sum of measured - 1 (signed)
  nlohmann::json to_json() const;
};

struct FitResult {
  StepCoefficients coefficients;
  FitErrors train;
  FitErrors held_out;           // steps == 0 when nothing was held out
  std::int64_t memory_bound = 0;  // training steps the memory term bounds
  int rounds = 0;
  std::int64_t contention_steps = 0;  // training steps that shared their host, fitting the contention
  nlohmann::json to_json() const;  // the errors and regime counts, for a fit report
};

// Fits the coefficients of `instance` to `steps`. The step model is fitted to the training steps
// that ran alone on their host (all of them when fewer than 8 did): the spill term's cache size is
// chosen among none and powers of two by a validation split of those steps, the coefficients are
// fitted, then scaled by one common factor so that those steps' predicted total time equals their
// measured total. The contention is then fitted to the steps that shared their host. The tensor-parallel communication terms are not
// fitted: they come from the instance's gpu_link (set_comm_terms) and are subtracted first.
// Throws twinfer::Error when fewer than 8 steps would be fitted.
FitResult fit_step_coefficients(const std::vector<MeasuredStep>& steps, const InstanceSpec& instance,
                                const FitOptions& options = FitOptions());

// Errors of `c` (its contention applied to each step's overlap) on `steps` of `instance`.
FitErrors step_errors(const StepCoefficients& c, const ModelTerms& m, const std::vector<MeasuredStep>& steps);

// A measured span of time on one instance that steps filled: a request's wait for its first token,
// or its decode. Each step that ran in it counts with the share of it inside the span and a factor
// on its modeled time (what else made it longer, such as the host's contention); `fixed_s` of the
// span was not spent in steps (idle, communication) and is not fitted; `extra` counts a fitted
// per-span term (a dispatch delay: 1 in a request's wait for its first token, else 0).
struct SpanStep {
  StepWork work;
  double share = 1;
  double factor = 1;
};
struct MeasuredSpan {
  std::vector<SpanStep> steps;
  double fixed_s = 0;
  double extra = 0;
  double seconds = 0;  // measured
};

struct SpanFitResult {
  StepCoefficients coefficients;  // `start`'s communication terms, cache size and contention kept
  double extra_s = 0;             // the per-span term
  int rounds = 0;
};

// Fits the step model's coefficients, and the per-span term, to measured spans: non-negative least
// squares of relative errors, each step assigned to the term that bounds it under `start` and
// reassigned under the fit until the assignment settles (at most options.max_rounds). The spill
// term is fitted at start.cache_bytes when that is > 0, else left out. Throws twinfer::Error when
// fewer than 8 spans have steps.
SpanFitResult fit_span_coefficients(const std::vector<MeasuredSpan>& spans, const InstanceSpec& instance,
                                    const StepCoefficients& start, const FitOptions& options = FitOptions());

// Non-negative least squares by the Lawson-Hanson active-set method, on the normal equations:
// minimizes |A x - b|^2 subject to x >= 0, given gram = A^T A (k x k, row-major) and atb = A^T b.
// Columns whose diagonal is 0 get 0.
std::vector<double> nnls_normal(const std::vector<double>& gram, const std::vector<double>& atb, int k);

}  // namespace twinfer
