#include "policies/admission/token_bucket_admission.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::ViewBuilder;

TokenBucketAdmission::Options bucket(double rate_per_s, double burst,
                                     TokenBucketAdmission::Cost cost = TokenBucketAdmission::Cost::kRequest) {
  TokenBucketAdmission::Options o;
  o.rate_per_s = rate_per_s;
  o.burst = burst;
  o.cost = cost;
  return o;
}

// Admits `n` requests of 100 + 10 tokens at `now_us`; returns which were admitted.
std::vector<bool> admit_n(TokenBucketAdmission& a, const ViewBuilder& b, TimeUs now_us, int n) {
  std::vector<bool> out;
  for (int i = 0; i < n; ++i) out.push_back(a.admit(make_request(i, now_us, 100, 10), b.view(now_us)).admitted);
  return out;
}

TEST(TokenBucketAdmission, ExactSequenceWithBurstAndRefill) {
  ViewBuilder b;
  b.add_worker();
  TokenBucketAdmission a(bucket(/*rate_per_s=*/2, /*burst=*/3));
  // Full bucket of 3 at the first request.
  EXPECT_EQ(admit_n(a, b, 1000000, 4), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(a.tokens(), 0);
  // 0.25 s at 2/s refills 0.5 token: not enough.
  EXPECT_EQ(admit_n(a, b, 1250000, 1), (std::vector<bool>{false}));
  EXPECT_EQ(a.tokens(), 0.5);
  // Another 0.25 s: exactly 1 token.
  EXPECT_EQ(admit_n(a, b, 1500000, 2), (std::vector<bool>{true, false}));
  // 10 s would refill 20; the bucket holds 3.
  EXPECT_EQ(admit_n(a, b, 11500000, 4), (std::vector<bool>{true, true, true, false}));
  EXPECT_EQ(a.name(), "token_bucket");
}

TEST(TokenBucketAdmission, RejectionReasonNamesThePolicy) {
  ViewBuilder b;
  b.add_worker();
  TokenBucketAdmission a(bucket(1, 1));
  EXPECT_TRUE(a.admit(make_request(1), b.view(0)).admitted);
  AdmissionDecision d = a.admit(make_request(2), b.view(10));
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, "rate limited (token_bucket)");
}

TEST(TokenBucketAdmission, TokenCostCountsInputAndOutputTokens) {
  ViewBuilder b;
  b.add_worker();
  TokenBucketAdmission a(bucket(1000, 500, TokenBucketAdmission::Cost::kTokens));
  // 110 tokens each: 500 -> 390 -> 280 -> 170 -> 60, then short.
  EXPECT_EQ(admit_n(a, b, 0, 5), (std::vector<bool>{true, true, true, true, false}));
  EXPECT_EQ(a.tokens(), 60);
  // 50 ms at 1000/s adds 50: 110, exactly one more.
  EXPECT_EQ(admit_n(a, b, 50000, 2), (std::vector<bool>{true, false}));
  // A request larger than the bucket can never pass, and says so.
  AdmissionDecision d = a.admit(make_request(9, 0, 400, 200), b.view(10000000));
  EXPECT_FALSE(d.admitted);
  EXPECT_NE(d.reason.find("rate limited (token_bucket)"), std::string::npos);
  EXPECT_NE(d.reason.find("burst"), std::string::npos);
  EXPECT_EQ(a.tokens(), 500);  // rejected requests take nothing
}

TEST(TokenBucketAdmission, TimeSteppingBackRefillsNothing) {
  ViewBuilder b;
  b.add_worker();
  TokenBucketAdmission a(bucket(1, 1));
  EXPECT_TRUE(a.admit(make_request(1), b.view(5000000)).admitted);
  EXPECT_FALSE(a.admit(make_request(2), b.view(0)).admitted);
  // Refill counts from 5 s, the latest time seen: 0.5 s later half a token.
  EXPECT_FALSE(a.admit(make_request(3), b.view(5500000)).admitted);
  EXPECT_TRUE(a.admit(make_request(4), b.view(6000000)).admitted);
}

TEST(TokenBucketAdmission, ReadsOptions) {
  nlohmann::json spec = {{"name", "token_bucket"}, {"rate_per_s", 20}, {"cost", "tokens"}};
  JsonParams p(spec, "admission");
  TokenBucketAdmission::Options o = TokenBucketAdmission::read_options(p);
  p.done();
  EXPECT_EQ(o.rate_per_s, 20);
  EXPECT_EQ(o.burst, 20);  // defaults to the rate
  EXPECT_EQ(o.cost, TokenBucketAdmission::Cost::kTokens);

  nlohmann::json slow = {{"rate_per_s", 0.5}};
  JsonParams ps(slow, "admission");
  EXPECT_EQ(TokenBucketAdmission::read_options(ps).burst, 1);  // at least one token

  nlohmann::json missing = nlohmann::json::object();
  JsonParams pm(missing, "admission");
  try {
    TokenBucketAdmission::read_options(pm);
    FAIL() << "no error for a missing rate_per_s";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("admission.rate_per_s: required"), std::string::npos) << e.what();
  }
  nlohmann::json bad_cost = {{"rate_per_s", 1}, {"cost", "bytes"}};
  JsonParams pb(bad_cost, "admission");
  EXPECT_THROW(TokenBucketAdmission::read_options(pb), Error);
}

}  // namespace
}  // namespace twinfer
