// Reading a JSON file with errors that name it.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace twinfer {

inline constexpr std::uintmax_t kMaxJsonFileBytes = 64u << 20;  // 64 MiB
inline constexpr int kMaxJsonDepth = 64;

// The parsed contents of `path`. Throws twinfer::Error "<path>: cannot open <what>", "<path>: not
// a regular file", a size past kMaxJsonFileBytes, nesting past kMaxJsonDepth, or "<path>: invalid
// JSON: ... line L, column C ..." (a number past a double's range included). `what` names the
// file's role ("config file").
nlohmann::json read_json_file(const std::string& path, const std::string& what);

}  // namespace twinfer
