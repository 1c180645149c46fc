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

// Non-negative least squares by the Lawson-Hanson active-set method, on the normal equations:
// minimizes |A x - b|^2 subject to x >= 0, given gram = A^T A (k x k, row-major) and atb = A^T b.
// Columns whose diagonal is 0 get 0.
std::vector<double> nnls_normal(const std::vector<double>& gram, const std::vector<double>& atb, int k);

}  // namespace twinfer
