#include "policies/router.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

class FixedRouter : public Router {
 public:
  explicit FixedRouter(RouteDecision d) : d_(std::move(d)) {}
  RouteDecision route(const Request&, const ClusterView&) override { return d_; }
  std::string name() const override { return "fixed"; }

 private:
  RouteDecision d_;
};

TEST(RouteChecked, PassesValidDecisionsThrough) {
  testing::ViewBuilder b;
  b.add_worker().add_worker();
  FixedRouter to1(RouteDecision::to(1));
  EXPECT_EQ(route_checked(to1, testing::make_request(0), b.view()).worker, 1);
  FixedRouter no(RouteDecision::reject("full"));
  EXPECT_EQ(route_checked(no, testing::make_request(0), b.view()).reason, "full");
  FixedRouter silent(RouteDecision::reject(""));
  EXPECT_EQ(route_checked(silent, testing::make_request(0), b.view()).reason, "rejected by router fixed");
}

TEST(RouteChecked, AWorkerOutsideTheClusterIsAnErrorNamingTheRouter) {
  testing::ViewBuilder b;
  b.add_worker().add_worker();
  FixedRouter bad(RouteDecision::to(2));
  try {
    route_checked(bad, testing::make_request(7), b.view());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "router 'fixed' chose worker 2 for request 7, but the cluster has 2 workers (0..1)");
  }
}

}  // namespace
}  // namespace twinfer
