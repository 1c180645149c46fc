#include <cmath>

#include <gtest/gtest.h>

#include "core/error.h"
#include "traces/trace.h"

namespace twinfer {
namespace {

TEST(PoissonArrivals, KeepsOrderRateAndEverythingButArrivalTimes) {
  Trace t;
  for (int i = 0; i < 20001; ++i) {
    Request r;
    r.id = static_cast<RequestId>(i);
    r.arrival_us = 1000 + i * 50000;  // perfectly regular, 20 requests/s
    r.input_tokens = i % 7 + 1;
    r.output_tokens = 3;
    r.deadline_us = r.arrival_us + 777;
    t.requests.push_back(r);
  }
  Trace p = poisson_arrivals(t, 5);
  ASSERT_EQ(p.requests.size(), t.requests.size());
  EXPECT_EQ(p.requests.front().arrival_us, 1000);
  double sum = 0, sum2 = 0;
  for (std::size_t i = 1; i < p.requests.size(); ++i) {
    const auto& r = p.requests[i];
    EXPECT_EQ(r.input_tokens, t.requests[i].input_tokens);
    EXPECT_EQ(r.deadline_us - r.arrival_us, 777);
    double gap = double(r.arrival_us - p.requests[i - 1].arrival_us);
    ASSERT_GE(gap, 0);
    sum += gap;
    sum2 += gap * gap;
  }
  const double n = double(p.requests.size() - 1), mean = sum / n, cv = std::sqrt(sum2 / n - mean * mean) / mean;
  EXPECT_NEAR(mean, 50000, 50000 * 0.03);  // 20,000 exponential gaps: ~0.7% standard error
  EXPECT_NEAR(cv, 1.0, 0.05);              // exponential, where the input's gaps had cv 0
  EXPECT_EQ(poisson_arrivals(t, 5).requests[500].arrival_us, p.requests[500].arrival_us);
  EXPECT_NE(poisson_arrivals(t, 6).requests[500].arrival_us, p.requests[500].arrival_us);
}

TEST(ScaleTrace, DividesArrivalsAndKeepsDeadlinesRelative) {
  Trace t;
  Request r;
  r.arrival_us = 1000001;
  r.deadline_us = 1000001 + 500;
  t.requests.push_back(r);
  Trace s = scale_trace(t, 2);
  EXPECT_EQ(s.requests[0].arrival_us, 500001);  // 500000.5 rounds half away from zero
  EXPECT_EQ(s.requests[0].deadline_us, 500001 + 500);
  EXPECT_THROW(scale_trace(t, 0), Error);
  EXPECT_THROW(scale_trace(t, -1), Error);
}

}  // namespace
}  // namespace twinfer
