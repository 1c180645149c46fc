// Router: which worker serves a request.
#pragma once

#include <string>

#include "policies/cluster_view.h"
#include "core/request.h"

namespace twinfer {

struct RouteDecision {
  int worker = -1;          // index into ClusterView::workers; -1 rejects
  std::string reason;       // why it was rejected (empty when routed)

  static RouteDecision to(int w) { return RouteDecision{w, {}}; }
  static RouteDecision reject(std::string why) { return RouteDecision{-1, std::move(why)}; }
  bool rejected() const { return worker < 0; }
};

// Thread safety: route() is called from one thread at a time.
class Router {
 public:
  virtual ~Router() = default;
  // Picks a worker that is not down and serves request.model, or rejects with a reason.
  virtual RouteDecision route(const Request& request, const ClusterView& view) = 0;
  virtual std::string name() const = 0;
  // Which fields of the view route() reads (see ViewUse).
  virtual ViewUse view_use() const { return ViewUse::kAll; }
  // True when route() reads the workers' KV events (ClusterView::kv_events): the drivers then have
  // the workers record them and deliver them. Such a router's view_use() is kAll.
  virtual bool reads_kv_events() const { return false; }
};

// Asks `router` for a decision and checks it: a worker index outside the view is a broken policy
// (a user's policy may be), reported as twinfer::Error naming the router, not carried out.
RouteDecision route_checked(Router& router, const Request& request, const ClusterView& view);

}  // namespace twinfer
