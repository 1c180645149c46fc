#include "policies/autoscalers/rate_forecast.h"

#include <algorithm>
#include <cassert>

namespace twinfer {

EwmaForecaster::EwmaForecaster(double alpha) : alpha_(alpha) { assert(alpha > 0 && alpha <= 1); }

void EwmaForecaster::observe(double rate) {
  assert(rate >= 0);
  level_ = started_ ? alpha_ * rate + (1 - alpha_) * level_ : rate;
  started_ = true;
}

double EwmaForecaster::forecast(double steps_ahead) const {
  assert(steps_ahead >= 0);
  (void)steps_ahead;  // a level has no trend to extrapolate
  return level_;
}

HoltForecaster::HoltForecaster(double alpha, double beta) : alpha_(alpha), beta_(beta) {
  assert(alpha > 0 && alpha <= 1 && beta >= 0 && beta <= 1);
}

void HoltForecaster::observe(double rate) {
  assert(rate >= 0);
  if (observations_ == 0) {
    level_ = rate;
    trend_ = 0;
    observations_ = 1;
    return;
  }
  if (observations_ == 1) {
    // Starting the trend from the first difference lets a ramp be followed from the third sample
    // instead of being learnt slowly from 0.
    trend_ = rate - level_;
    level_ = rate;
    observations_ = 2;
    return;
  }
  const double previous_level = level_;
  level_ = alpha_ * rate + (1 - alpha_) * (level_ + trend_);
  trend_ = beta_ * (level_ - previous_level) + (1 - beta_) * trend_;
}

double HoltForecaster::forecast(double steps_ahead) const {
  assert(steps_ahead >= 0);
  return std::max(0.0, level_ + steps_ahead * trend_);
}

std::unique_ptr<RateForecaster> make_rate_forecaster(const std::string& kind, double alpha, double beta) {
  assert(kind == "ewma" || kind == "holt");
  if (kind == "ewma") return std::make_unique<EwmaForecaster>(alpha);
  return std::make_unique<HoltForecaster>(alpha, beta);
}

}  // namespace twinfer
