// --help handling shared by the subcommands.
#pragma once

#include <cstdio>
#include <cstring>

namespace twinfer::cli {

// True (after printing `usage` to stdout) when the arguments ask for help.
inline bool wants_help(int argc, char** argv, const char* usage) {
  for (int i = 0; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(usage, stdout);
      return true;
    }
  }
  return false;
}

}  // namespace twinfer::cli
