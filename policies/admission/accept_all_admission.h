// Accept all: admits every request (the default admission policy).
#pragma once

#include <string>

#include "policies/admission.h"

namespace twinfer {

class AcceptAllAdmission : public Admission {
 public:
  AdmissionDecision admit(const Request&, const ClusterView&) override { return AdmissionDecision::admit(); }
  std::string name() const override { return "accept_all"; }
  ViewUse view_use() const override { return ViewUse::kMembership; }
};

}  // namespace twinfer
