#include "policies/autoscalers/rate_forecast.h"

#include <gtest/gtest.h>

namespace twinfer {
namespace {

TEST(EwmaForecasterTest, StartsAtTheFirstObservationThenSmooths) {
  EwmaForecaster f(0.5);
  EXPECT_DOUBLE_EQ(f.forecast(1), 0);
  f.observe(10);
  EXPECT_DOUBLE_EQ(f.forecast(1), 10);
  f.observe(20);
  EXPECT_DOUBLE_EQ(f.forecast(1), 15);
  f.observe(20);
  EXPECT_DOUBLE_EQ(f.forecast(0), 17.5);
  EXPECT_DOUBLE_EQ(f.forecast(5), 17.5);  // no trend: the same at every horizon
}

TEST(HoltForecasterTest, FirstTwoObservationsSetLevelAndTrend) {
  HoltForecaster f(0.5, 0.5);
  EXPECT_DOUBLE_EQ(f.forecast(1), 0);
  f.observe(10);
  EXPECT_DOUBLE_EQ(f.level(), 10);
  EXPECT_DOUBLE_EQ(f.trend(), 0);
  f.observe(20);
  EXPECT_DOUBLE_EQ(f.level(), 20);
  EXPECT_DOUBLE_EQ(f.trend(), 10);
  EXPECT_DOUBLE_EQ(f.forecast(2), 40);
}

TEST(HoltForecasterTest, UpdatesLevelAndTrendBySmoothing) {
  HoltForecaster f(0.5, 0.5);
  f.observe(10);
  f.observe(20);
  f.observe(20);
  // level = 0.5 * 20 + 0.5 * (20 + 10) = 25; trend = 0.5 * (25 - 20) + 0.5 * 10 = 7.5
  EXPECT_DOUBLE_EQ(f.level(), 25);
  EXPECT_DOUBLE_EQ(f.trend(), 7.5);
  EXPECT_DOUBLE_EQ(f.forecast(1), 32.5);
  EXPECT_DOUBLE_EQ(f.forecast(0.5), 28.75);
}

TEST(HoltForecasterTest, FollowsALinearRampAheadOfTheLastObservation) {
  HoltForecaster holt(0.5, 0.3);
  EwmaForecaster ewma(0.5);
  for (int k = 0; k < 10; ++k) {
    holt.observe(100.0 * (k + 1));
    ewma.observe(100.0 * (k + 1));
  }
  // An exact ramp keeps level = last observation and trend = slope.
  EXPECT_DOUBLE_EQ(holt.forecast(3), 1300);
  EXPECT_GT(holt.forecast(3), 1000);
  EXPECT_LT(ewma.forecast(3), 1000);
}

TEST(HoltForecasterTest, NeverForecastsANegativeRate) {
  HoltForecaster f(0.5, 0.5);
  f.observe(10);
  f.observe(0);  // trend -10
  EXPECT_DOUBLE_EQ(f.forecast(0), 0);
  EXPECT_DOUBLE_EQ(f.forecast(1), 0);
}

TEST(MakeRateForecasterTest, BuildsByKind) {
  EXPECT_EQ(make_rate_forecaster("holt", 0.5, 0.3)->name(), "holt");
  EXPECT_EQ(make_rate_forecaster("ewma", 0.5, 0.3)->name(), "ewma");
}

}  // namespace
}  // namespace twinfer
