// TrafficSplit: which version of a model serves a request. A model's versions are the config's
// models whose `version_of` names it (cluster.models); each is served by its own workers.
#pragma once

#include <string>
#include <vector>

#include "core/request.h"
#include "core/time.h"

namespace twinfer {

// Thread safety: called from one thread at a time.
class TrafficSplit {
 public:
  virtual ~TrafficSplit() = default;
  // Picks the version that serves `request`, whose model has the versions `versions` (model names,
  // in config order, never empty). serving[i] says whether versions[i] can take a request now (it
  // has a ready worker that is not down); a split should pick a serving version whenever there is
  // one, so that a version still loading (a hot swap) or scaled to zero gets nothing. Returns one
  // of `versions`. `now_us` lets a split follow a schedule.
  virtual std::string pick(const Request& request, const std::vector<std::string>& versions,
                           const std::vector<bool>& serving, TimeUs now_us) = 0;
  // The largest share of the model's requests that the split means to send to `version` at any
  // time in [from_us, to_us], in [0, 1]; or a negative number when the split cannot tell. Elastic
  // pools follow it: a version that is to get nothing holds no replica (its pool drains to zero),
  // one about to get traffic is started a cold start ahead, sized for its share.
  virtual double max_share(const std::string& version, const std::vector<std::string>& versions, TimeUs from_us,
                           TimeUs to_us) const {
    (void)version, (void)versions, (void)from_us, (void)to_us;
    return -1;
  }
  virtual std::string name() const = 0;
};

}  // namespace twinfer
