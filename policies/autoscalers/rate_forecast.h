// Forecasters of a request arrival rate observed once per decision interval (predictive autoscaling).
#pragma once

#include <memory>
#include <string>

namespace twinfer {

// Sees one observed rate per interval, in time order, and predicts the rate some intervals ahead.
// Rates are in requests per second (any unit works: the forecast has the unit of the observations).
class RateForecaster {
 public:
  virtual ~RateForecaster() = default;
  // REQUIRES: rate >= 0.
  virtual void observe(double rate) = 0;
  // The rate expected `steps_ahead` intervals after the last observation (REQUIRES: >= 0); never
  // negative; 0 before any observation.
  virtual double forecast(double steps_ahead) const = 0;
  virtual std::string name() const = 0;
};

// Exponentially weighted moving average: level = alpha * rate + (1 - alpha) * level, starting at the
// first observation. Forecasts the level at every horizon (no trend).
class EwmaForecaster : public RateForecaster {
 public:
  explicit EwmaForecaster(double alpha);  // REQUIRES: 0 < alpha <= 1
  void observe(double rate) override;
  double forecast(double steps_ahead) const override;
  std::string name() const override { return "ewma"; }

 private:
  double alpha_;
  double level_ = 0;
  bool started_ = false;
};

// Holt's linear trend (double exponential smoothing). The first observation sets the level (trend
// 0), the second sets level = rate and trend = rate - first; after that
//   level' = alpha * rate + (1 - alpha) * (level + trend)
//   trend' = beta * (level' - level) + (1 - beta) * trend
// forecast(h) = max(0, level + h * trend).
class HoltForecaster : public RateForecaster {
 public:
  HoltForecaster(double alpha, double beta);  // REQUIRES: 0 < alpha <= 1, 0 <= beta <= 1
  void observe(double rate) override;
  double forecast(double steps_ahead) const override;
  std::string name() const override { return "holt"; }
  double level() const { return level_; }
  double trend() const { return trend_; }  // per interval

 private:
  double alpha_;
  double beta_;
  double level_ = 0;
  double trend_ = 0;
  int observations_ = 0;  // counted up to 2: the first two initialize
};

// "ewma" or "holt" (REQUIRES: one of them; `beta` is unused by "ewma").
std::unique_ptr<RateForecaster> make_rate_forecaster(const std::string& kind, double alpha, double beta);

}  // namespace twinfer
