// The subcommands of build/bin/twinfer. Each takes the arguments after its name and returns the
// process exit code; expected failures throw twinfer::Error.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace twinfer::cli {

int sim_command(int argc, char** argv);
int compare_command(int argc, char** argv);
int trace_command(int argc, char** argv);
int policies_command(int argc, char** argv);
int run_command(int argc, char** argv);
int profile_command(int argc, char** argv);
int calibrate_command(int argc, char** argv);
// Writes a cost file (twinfer-cost-v1) to `path` and prints its coefficients and fit errors.
void write_cost_file(const nlohmann::json& table, const std::string& path);
int fidelity_command(int argc, char** argv);
int worker_command(int argc, char** argv);
int serve_command(int argc, char** argv);
int replay_command(int argc, char** argv);

}  // namespace twinfer::cli
