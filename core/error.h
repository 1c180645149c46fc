// The one exception type for expected failures: bad input files, unknown names, bad parameters.
#pragma once

#include <stdexcept>
#include <string>

namespace twinfer {

// An expected failure. The message says what and where (file:line, key, address), so it can be
// shown to the user as is. Programming errors assert instead.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace twinfer
