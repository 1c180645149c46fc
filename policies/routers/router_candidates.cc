#include "policies/routers/router_candidates.h"

namespace twinfer {

void collect_candidates(const Request& request, const ClusterView& view, std::vector<int>& out) {
  out.clear();
  bool any_suspect = false;
  for (const WorkerView& w : view.all()) {
    if (!eligible(w, request)) continue;
    if (w.health == Health::kUp) {
      out.push_back(w.index);
    } else {
      any_suspect = true;
    }
  }
  if (!out.empty() || !any_suspect) return;
  // Suspect workers are a last resort: better a slow answer than a rejection.
  for (const WorkerView& w : view.all()) {
    if (eligible(w, request)) out.push_back(w.index);
  }
}

std::string no_candidate_reason(const Request& request, const ClusterView& view) {
  bool served = false;
  for (const WorkerView& w : view.all()) served = served || w.serves(request.model);
  if (request.model.empty()) return served ? "no healthy worker" : "no worker in the cluster";
  if (!served) return "no worker serves model '" + request.model.str() + "'";
  return "no healthy worker for model '" + request.model.str() + "'";
}

}  // namespace twinfer
