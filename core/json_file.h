// Reading a JSON file with errors that name it.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace twinfer {

// The parsed contents of `path`. Throws twinfer::Error "<path>: cannot open <what>" or
// "<path>: invalid JSON: ... line L, column C ...". `what` names the file's role ("config file").
nlohmann::json read_json_file(const std::string& path, const std::string& what);

}  // namespace twinfer
