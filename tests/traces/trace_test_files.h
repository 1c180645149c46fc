// Helpers shared by the trace tests: fixture paths, temporary trace files, error capture.
#pragma once

#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

#include "core/error.h"

namespace twinfer::testing {

// A fixture file under tests/traces/data/.
inline std::string fixture_path(const std::string& name) {
  return std::string(TWINFER_SOURCE_DIR) + "/tests/traces/data/" + name;
}


// Writes `text` to a file named after the running test and `name`; returns its path.
inline std::string write_temp_file(const std::string& name, const std::string& text) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string path = ::testing::TempDir() + "twinfer_" + std::to_string(getpid()) + "_" +
                           info->test_suite_name() + "_" + info->name() + "_" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The message of the twinfer::Error that fn throws, or "(no error)".
template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace twinfer::testing
