#include <iostream>

#include "policies/registry.h"
#include "cli/commands.h"
#include "cli/help.h"

namespace twinfer::cli {

int policies_command(int argc, char** argv) {
  if (wants_help(argc, argv, "usage: twinfer policies\n\nLists the registered policies of each kind.\n")) return 0;
  std::cout << "routers:     " << router_registry().joined_names() << "\n"
            << "batchers:    " << batcher_registry().joined_names() << "\n"
            << "admissions:  " << admission_registry().joined_names() << "\n"
            << "cost models: " << cost_model_registry().joined_names() << "\n"
            << "autoscalers: " << autoscaler_registry().joined_names() << "\n"
            << "splits:      " << traffic_split_registry().joined_names() << "\n";
  return 0;
}

}  // namespace twinfer::cli
