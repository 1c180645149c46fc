#include "core/json_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace twinfer {

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  // Regular files only: a directory, /dev/zero or a pipe would be read forever or not at all.
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw Error(path + ": cannot open " + what);
  if (!std::filesystem::is_regular_file(status)) throw Error(path + ": not a regular file (" + what + ")");
  const std::uintmax_t bytes = std::filesystem::file_size(path, ec);
  if (!ec && bytes > kMaxJsonFileBytes) {
    throw Error(path + ": " + std::to_string(bytes) + " bytes; a " + what + " holds at most " +
                std::to_string(kMaxJsonFileBytes) + " bytes");
  }
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open " + what);
  std::stringstream text;
  text << in.rdbuf();
  // Nesting is bounded while parsing, before a deep document can exhaust the stack later on.
  const nlohmann::json::parser_callback_t depth_limit = [&](int depth, nlohmann::json::parse_event_t,
                                                            nlohmann::json&) {
    if (depth > kMaxJsonDepth) {
      throw Error(path + ": nested deeper than " + std::to_string(kMaxJsonDepth) + " levels (" + what + ")");
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text.str(), depth_limit);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(path + ": invalid JSON: " + e.what());
  } catch (const nlohmann::json::exception& e) {  // e.g. a number past a double's range (1e400)
    throw Error(path + ": invalid JSON: " + e.what());
  }
}

}  // namespace twinfer
