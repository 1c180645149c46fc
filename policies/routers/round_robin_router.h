// Round robin: each request goes to the next candidate worker in index order.
#pragma once

#include <string>

#include "policies/router.h"

namespace twinfer {

// Cycles over worker indices, skipping workers that may not take the request (down, another
// model; suspect ones while a healthy one exists). The cycle position is shared by all models, so
// with several models each still sees its workers in turn.
class RoundRobinRouter : public Router {
 public:
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "round_robin"; }
  ViewUse view_use() const override { return ViewUse::kMembership; }

 private:
  int next_ = 0;  // worker index to try first
};

}  // namespace twinfer
