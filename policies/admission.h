// Admission: whether a request may enter the system at all.
#pragma once

#include <optional>
#include <string>

#include "policies/cluster_view.h"
#include "core/request.h"

namespace twinfer {

struct AdmissionDecision {
  bool admitted = true;
  std::string reason;  // why not, when rejected

  static AdmissionDecision admit() { return {true, {}}; }
  static AdmissionDecision reject(std::string why) { return {false, std::move(why)}; }
};

// Thread safety: called from one thread at a time.
class Admission {
 public:
  virtual ~Admission() = default;
  // Called once per request on arrival, before routing. view.now_us is the arrival time.
  virtual AdmissionDecision admit(const Request& request, const ClusterView& view) = 0;
  // Called for a waiting request just before a worker would start it; a reason drops it.
  virtual std::optional<std::string> drop_before_start(const Request& request, TimeUs now_us) const {
    (void)request;
    (void)now_us;
    return std::nullopt;
  }
  // False lets drivers skip drop_before_start() entirely (it always returns nullopt).
  virtual bool may_drop_before_start() const { return false; }
  virtual std::string name() const = 0;
  // Which fields of the view admit() reads (see ViewUse).
  virtual ViewUse view_use() const { return ViewUse::kAll; }
};

}  // namespace twinfer
