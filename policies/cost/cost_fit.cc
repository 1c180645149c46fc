#include "policies/cost/cost_fit.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "core/percentile.h"

namespace twinfer {
namespace {

// step, sequence, linear, attention, weights, kv, spill, gemm weights (the first 8 of
// kFittedCoefficients)
constexpr int kFeatures = 8;
using Row = std::array<double, kFeatures>;

// Solves the k x k system m x = v in place (Gaussian elimination with partial pivoting). A pivot
// below `tiny` leaves its unknown at 0 (collinear columns).
std::vector<double> solve(std::vector<double> m, std::vector<double> v, int k) {
  constexpr double tiny = 1e-12;
  std::vector<int> pivot_row(k, -1);
  for (int col = 0, row = 0; col < k && row < k; ++col) {
    int best = row;
    for (int r = row + 1; r < k; ++r) {
      if (std::abs(m[r * k + col]) > std::abs(m[best * k + col])) best = r;
    }
    if (std::abs(m[best * k + col]) < tiny) continue;
    for (int c = 0; c < k; ++c) std::swap(m[row * k + c], m[best * k + c]);
    std::swap(v[row], v[best]);
    for (int r = 0; r < k; ++r) {
      if (r == row) continue;
      const double f = m[r * k + col] / m[row * k + col];
      if (f == 0) continue;
      for (int c = col; c < k; ++c) m[r * k + c] -= f * m[row * k + c];
      v[r] -= f * v[row];
    }
    pivot_row[col] = row++;
  }
  std::vector<double> x(k, 0);
  for (int col = 0; col < k; ++col) {
    if (pivot_row[col] >= 0) x[col] = v[pivot_row[col]] / m[pivot_row[col] * k + col];
  }
  return x;
}

// `cache_bytes` < 0: no spill term.
Row features(const ModelTerms& m, const StepWork& w, double cache_bytes) {
  const double kv_bytes = m.kv_bytes_per_token * (w.kv_read_tokens + w.tokens);
  const double spill = cache_bytes < 0 ? 0 : std::max(0.0, m.weights_bytes + kv_bytes - cache_bytes);
  return {1.0,      w.sequences, m.flops_per_token * w.tokens, m.flops_per_attn_pair * w.attn_pairs, m.weights_bytes,
          kv_bytes, spill,       w.tokens > 1 ? m.weights_bytes : 0.0};
}

StepCoefficients from_vector(const std::vector<double>& x, const StepCoefficients& comm, double cache_bytes) {
  StepCoefficients c = comm;
  c.step_s = x[0];
  c.sequence_s = x[1];
  c.linear_s_per_flop = x[2];
  c.attention_s_per_flop = x[3];
  c.weights_s_per_byte = x[4];
  c.kv_s_per_byte = x[5];
  c.spill_s_per_byte = cache_bytes < 0 ? 0 : x[6];
  c.gemm_weights_s_per_byte = x[7];
  c.cache_bytes = std::max(0.0, cache_bytes);
  return c;
}

bool memory_bound(const StepCoefficients& c, const Row& f) {
  return c.weights_s_per_byte * f[4] + c.kv_s_per_byte * f[5] + c.spill_s_per_byte * f[6] +
             c.gemm_weights_s_per_byte * f[7] >
         c.linear_s_per_flop * f[2] + c.attention_s_per_flop * f[3];
}

// `f` with the features of the term that does not bound the step zeroed: the memory terms' when
// compute bounds it, the compute terms' otherwise.
Row in_regime(Row f, bool memory) {
  if (memory) {
    f[2] = f[3] = 0;
  } else {
    f[4] = f[5] = f[6] = f[7] = 0;
  }
  return f;
}

// Adds one weighted row `a` (k entries) with its target to the normal equations A^T A, A^T b.
template <class Row_>
void add_row(std::vector<double>& gram, std::vector<double>& atb, const Row_& a, int k, double weight, double target) {
  const double w2 = weight * weight;
  for (int r = 0; r < k; ++r) {
    if (a[r] == 0) continue;
    atb[r] += w2 * a[r] * target;
    for (int c = 0; c < k; ++c) gram[r * k + c] += w2 * a[r] * a[c];
  }
}

struct Sample {
  Row f;
  double target;  // measured seconds less the communication terms
  double weight;  // 1 / measured
};

// NNLS fit with each sample's regime fixed.
StepCoefficients fit_regimes(const std::vector<Sample>& samples, const std::vector<bool>& memory,
                             const StepCoefficients& comm, double cache_bytes) {
  std::vector<double> gram(kFeatures * kFeatures, 0), atb(kFeatures, 0);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    add_row(gram, atb, in_regime(samples[i].f, memory[i]), kFeatures, samples[i].weight, samples[i].target);
  }
  return from_vector(nnls_normal(gram, atb, kFeatures), comm, cache_bytes);
}

}  // namespace

std::vector<double> nnls_normal(const std::vector<double>& gram_in, const std::vector<double>& atb_in, int k) {
  // Scale the columns to unit diagonal for conditioning.
  std::vector<double> scale(k, 0);
  for (int j = 0; j < k; ++j) scale[j] = gram_in[j * k + j] > 0 ? std::sqrt(gram_in[j * k + j]) : 0;
  std::vector<double> g(k * k, 0), h(k, 0);
  for (int r = 0; r < k; ++r) {
    if (scale[r] == 0) continue;
    h[r] = atb_in[r] / scale[r];
    for (int c = 0; c < k; ++c) {
      if (scale[c] != 0) g[r * k + c] = gram_in[r * k + c] / (scale[r] * scale[c]);
    }
  }
  constexpr double tol = 1e-12;
  std::vector<double> x(k, 0);
  std::vector<bool> passive(k, false);
  auto gradient = [&] {
    std::vector<double> w(k, 0);
    for (int r = 0; r < k; ++r) {
      w[r] = h[r];
      for (int c = 0; c < k; ++c) w[r] -= g[r * k + c] * x[c];
    }
    return w;
  };
  // z: the unconstrained solution on the passive set, 0 elsewhere.
  auto solve_passive = [&] {
    std::vector<int> cols;
    for (int j = 0; j < k; ++j) {
      if (passive[j]) cols.push_back(j);
    }
    const int n = static_cast<int>(cols.size());
    std::vector<double> m(n * n), v(n);
    for (int a = 0; a < n; ++a) {
      v[a] = h[cols[a]];
      for (int b = 0; b < n; ++b) m[a * n + b] = g[cols[a] * k + cols[b]];
    }
    const std::vector<double> y = solve(m, v, n);
    std::vector<double> z(k, 0);
    for (int a = 0; a < n; ++a) z[cols[a]] = y[a];
    return z;
  };
  for (int outer = 0; outer < 3 * k; ++outer) {
    const std::vector<double> w = gradient();
    int best = -1;
    for (int j = 0; j < k; ++j) {
      if (!passive[j] && scale[j] > 0 && w[j] > tol && (best < 0 || w[j] > w[best])) best = j;
    }
    if (best < 0) break;
    passive[best] = true;
    for (int inner = 0; inner < 3 * k; ++inner) {
      const std::vector<double> z = solve_passive();
      bool feasible = true;
      for (int j = 0; j < k; ++j) feasible &= !passive[j] || z[j] > tol;
      if (feasible) {
        x = z;
        break;
      }
      double alpha = 1;
      for (int j = 0; j < k; ++j) {
        if (passive[j] && z[j] <= tol) alpha = std::min(alpha, x[j] / (x[j] - z[j]));
      }
      for (int j = 0; j < k; ++j) {
        x[j] += alpha * (z[j] - x[j]);
        if (passive[j] && x[j] <= tol) {
          passive[j] = false;
          x[j] = 0;
        }
      }
    }
  }
  for (int j = 0; j < k; ++j) x[j] = scale[j] > 0 ? std::max(0.0, x[j]) / scale[j] : 0;
  return x;
}

nlohmann::json FitErrors::to_json() const {
  return {{"steps", steps}, {"mape", mape}, {"median_ape", median_ape}, {"p90_ape", p90_ape},
          {"total_error", total_error}};
}

nlohmann::json FitResult::to_json() const {
  nlohmann::json j = {{"train", train.to_json()}, {"memory_bound_steps", memory_bound}, {"rounds", rounds},
                      {"contention_steps", contention_steps}};
  if (held_out.steps > 0) j["held_out"] = held_out.to_json();
  return j;
}

FitErrors step_errors(const StepCoefficients& c, const ModelTerms& m, const std::vector<MeasuredStep>& steps) {
  FitErrors e;
  e.steps = static_cast<std::int64_t>(steps.size());
  if (steps.empty()) return e;
  std::vector<double> ape;
  double predicted = 0, measured = 0;
  for (const MeasuredStep& s : steps) {
    const double p = step_seconds(c, m, s.work) * (1 + c.contention * s.overlap);
    ape.push_back(std::abs(p - s.seconds) / s.seconds);
    predicted += p;
    measured += s.seconds;
  }
  double sum = 0;
  for (double a : ape) sum += a;
  e.mape = sum / static_cast<double>(ape.size());
  std::sort(ape.begin(), ape.end());
  e.median_ape = percentile(ape, 50);
  e.p90_ape = percentile(ape, 90);
  e.total_error = predicted / measured - 1;
  return e;
}

namespace {

// The step model alone (no contention) fitted to `steps` with the spill term at `cache_bytes`
// (< 0: none): the regime assignment from three starts, the best by weighted squared error.
StepCoefficients fit_base(const std::vector<MeasuredStep>& steps, const InstanceSpec& instance, const ModelTerms& m,
                          const StepCoefficients& comm, double cache_bytes, const FitOptions& options, int& rounds,
                          std::int64_t& memory_steps) {
  std::vector<Sample> samples;
  for (const MeasuredStep& s : steps) {
    const double comm_s = comm.comm_s_per_token * s.work.tokens + comm.comm_s;
    samples.push_back(Sample{features(m, s.work, cache_bytes), s.seconds - comm_s,
                             1.0 / std::max(s.seconds, options.min_step_s)});
  }
  // Starts: every step compute-bound, every step memory-bound, and the device profile's roofline.
  const StepCoefficients roofline = roofline_coefficients(instance, 0, 0, 0);
  std::vector<std::vector<bool>> starts = {std::vector<bool>(samples.size(), false),
                                           std::vector<bool>(samples.size(), true)};
  std::vector<bool> by_roofline(samples.size());
  for (std::size_t i = 0; i < samples.size(); ++i) by_roofline[i] = memory_bound(roofline, samples[i].f);
  starts.push_back(by_roofline);
  StepCoefficients best;
  double best_objective = std::numeric_limits<double>::infinity();
  for (std::vector<bool> regime : starts) {
    StepCoefficients c;
    int round = 0;
    for (; round < options.max_rounds; ++round) {
      c = fit_regimes(samples, regime, comm, cache_bytes);
      bool changed = false;
      for (std::size_t i = 0; i < samples.size(); ++i) {
        const bool mem = memory_bound(c, samples[i].f);
        changed |= mem != regime[i];
        regime[i] = mem;
      }
      if (!changed) break;
    }
    double obj = 0;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const double e = (step_seconds(c, m, steps[i].work) - steps[i].seconds) * samples[i].weight;
      obj += e * e;
    }
    if (obj < best_objective) {
      best_objective = obj;
      best = c;
      rounds = round + 1;
      memory_steps = std::count(regime.begin(), regime.end(), true);
    }
  }
  // Relative errors weigh the many short steps; the sum of step times (what latencies add up) is
  // then unbiased by one common scale of the fitted coefficients.
  double predicted = 0, measured = 0, comm_total = 0;
  for (const MeasuredStep& s : steps) {
    predicted += step_seconds(best, m, s.work);
    measured += s.seconds;
    comm_total += comm.comm_s_per_token * s.work.tokens + comm.comm_s;
  }
  if (predicted - comm_total > 0) {
    const double scale = std::max(0.0, measured - comm_total) / (predicted - comm_total);
    for (double* x : {&best.step_s, &best.sequence_s, &best.linear_s_per_flop, &best.attention_s_per_flop,
                      &best.weights_s_per_byte, &best.kv_s_per_byte, &best.spill_s_per_byte,
                      &best.gemm_weights_s_per_byte}) {
      *x *= scale;
    }
  }
  return best;
}

// The contention that best explains the overlapped steps' excess over `c` (relative least squares).
double fit_contention(const StepCoefficients& c, const ModelTerms& m, const std::vector<MeasuredStep>& steps) {
  double ab = 0, aa = 0;
  for (const MeasuredStep& s : steps) {
    const double pred = step_seconds(c, m, s.work);
    const double a = pred * s.overlap / s.seconds;
    ab += a * (1 - pred / s.seconds);
    aa += a * a;
  }
  return aa > 0 ? std::clamp(ab / aa, 0.0, 10.0) : 0.0;
}

double mape_of(const StepCoefficients& c, const ModelTerms& m, const std::vector<MeasuredStep>& steps) {
  double sum = 0;
  for (const MeasuredStep& s : steps) sum += std::abs(step_seconds(c, m, s.work) - s.seconds) / s.seconds;
  return steps.empty() ? 0 : sum / double(steps.size());
}

}  // namespace

FitResult fit_step_coefficients(const std::vector<MeasuredStep>& steps, const InstanceSpec& instance,
                                const FitOptions& options) {
  const ModelTerms m = ModelTerms::of(instance.model);
  StepCoefficients comm;
  set_comm_terms(instance, comm);
  std::vector<MeasuredStep> train, held_out;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (!(steps[i].seconds > 0)) continue;
    const bool hold = options.holdout_every > 0 && i % std::size_t(options.holdout_every) == std::size_t(options.holdout_every - 1);
    (hold ? held_out : train).push_back(steps[i]);
  }
  // The step model is fitted to the steps that ran alone on their host; the contention to the rest.
  std::vector<MeasuredStep> alone, shared;
  for (const MeasuredStep& s : train) (s.overlap < options.alone_below ? alone : shared).push_back(s);
  if (alone.size() < 8) {
    alone = train;
    shared.clear();
  }
  if (alone.size() < 8) {
    throw Error("cost fit: instance '" + instance.name + "' has " + std::to_string(train.size()) +
                " measured steps to fit, fewer than 8");
  }
  // The cache size of the spill term: none, or a power of two from 1 MB to 64 GB, whichever
  // predicts a quarter of the alone steps best when fitted to the rest.
  std::vector<MeasuredStep> fit_part, check_part;
  for (std::size_t i = 0; i < alone.size(); ++i) (i % 4 == 3 ? check_part : fit_part).push_back(alone[i]);
  double best_cache = -1;
  double best_mape = std::numeric_limits<double>::infinity();
  int rounds = 0;
  std::int64_t memory_steps = 0;
  for (double cache = -1; cache <= 64e9; cache = cache < 0 ? 1 << 20 : cache * 2) {
    if (fit_part.size() < 8 || check_part.empty()) break;
    const StepCoefficients c = fit_base(fit_part, instance, m, comm, cache, options, rounds, memory_steps);
    const double mape = mape_of(c, m, check_part);
    if (mape < best_mape * 0.99) {  // a spill term must earn its place
      best_mape = mape;
      best_cache = cache;
    }
  }
  FitResult result;
  result.coefficients = fit_base(alone, instance, m, comm, best_cache, options, rounds, memory_steps);
  result.rounds = rounds;
  result.memory_bound = memory_steps;
  result.contention_steps = static_cast<std::int64_t>(shared.size());
  if (shared.size() >= 8) result.coefficients.contention = fit_contention(result.coefficients, m, shared);
  result.train = step_errors(result.coefficients, m, train);
  result.held_out = step_errors(result.coefficients, m, held_out);
  return result;
}

SpanFitResult fit_span_coefficients(const std::vector<MeasuredSpan>& spans, const InstanceSpec& instance,
                                    const StepCoefficients& start, const FitOptions& options) {
  const ModelTerms m = ModelTerms::of(instance.model);
  const double cache_bytes = start.cache_bytes > 0 ? start.cache_bytes : -1;
  std::size_t with_steps = 0;
  for (const MeasuredSpan& s : spans) with_steps += !s.steps.empty() && s.seconds > 0;
  if (with_steps < 8) {
    throw Error("cost fit: instance '" + instance.name + "' has " + std::to_string(with_steps) +
                " measured spans with steps, fewer than 8");
  }
  constexpr int k = kFeatures + 1;  // the step model's features, then the per-span term
  SpanFitResult result;
  result.coefficients = start;
  for (int round = 0; round < options.max_rounds; ++round) {
    const StepCoefficients& c = result.coefficients;
    std::vector<double> gram(k * k, 0), atb(k, 0);
    for (const MeasuredSpan& s : spans) {
      if (s.steps.empty() || !(s.seconds > 0)) continue;
      std::array<double, k> a{};
      for (const SpanStep& st : s.steps) {
        const Row f = features(m, st.work, cache_bytes);
        const Row masked = in_regime(f, memory_bound(c, f));
        for (int j = 0; j < kFeatures; ++j) a[j] += st.share * st.factor * masked[j];
      }
      a[kFeatures] = s.extra;
      add_row(gram, atb, a, k, 1.0 / std::max(s.seconds, options.min_step_s), s.seconds - s.fixed_s);
    }
    const std::vector<double> x = nnls_normal(gram, atb, k);
    StepCoefficients next = from_vector(x, start, cache_bytes);
    next.contention = start.contention;
    result.rounds = round + 1;
    bool changed = round == 0;  // the start's assignment is not the fit's
    for (std::size_t i = 0; i < spans.size() && !changed; ++i) {
      for (const SpanStep& st : spans[i].steps) {
        const Row f = features(m, st.work, cache_bytes);
        if (memory_bound(c, f) != memory_bound(next, f)) {
          changed = true;
          break;
        }
      }
    }
    result.coefficients = next;
    result.extra_s = x[kFeatures];
    if (!changed) break;
  }
  return result;
}

}  // namespace twinfer
