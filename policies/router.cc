#include "policies/router.h"

#include "core/error.h"

namespace twinfer {

RouteDecision route_checked(Router& router, const Request& request, const ClusterView& view) {
  RouteDecision d = router.route(request, view);
  if (d.rejected()) {
    if (d.reason.empty()) d.reason = "rejected by router " + router.name();
    return d;
  }
  if (static_cast<std::size_t>(d.worker) >= view.size()) {
    throw Error("router '" + router.name() + "' chose worker " + std::to_string(d.worker) + " for request " +
                std::to_string(request.id) + ", but the cluster has " + std::to_string(view.size()) +
                " workers (0.." + std::to_string(int(view.size()) - 1) + ")");
  }
  return d;
}

}  // namespace twinfer
