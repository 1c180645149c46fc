// TrafficSplit: which version of a model serves a request. A model's versions are the config's
// models whose `version_of` names it (cluster.models); each is served by its own workers.
#pragma once

#include <string>
#include <vector>

#include "policies/request.h"
#include "policies/time.h"

namespace twinfer {

// Thread safety: called from one thread at a time.
class TrafficSplit {
 public:
  virtual ~TrafficSplit() = default;
  // Picks the version that serves `request`, whose model has the versions `versions` (model names,
  // in config order, never empty). Returns one of them. `now_us` lets a split follow a schedule.
  virtual std::string pick(const Request& request, const std::vector<std::string>& versions, TimeUs now_us) = 0;
  virtual std::string name() const = 0;
};

}  // namespace twinfer
