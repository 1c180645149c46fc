#include "core/json_file.h"

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

std::string write(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/json_file_" + name;
  std::ofstream(path) << text;
  return path;
}

// Hostile files give an error naming the file, never an abort, a crash or a read without end.
TEST(ReadJsonFile, HostileFilesAreErrorsNamingTheFile) {
  const auto error = [](const std::string& path) {
    return testing::error_of([&] { read_json_file(path, "config file"); });
  };
  EXPECT_EQ(read_json_file(write("ok.json", R"({"a": [1, 2]})"), "config file")["a"][1], 2);
  const std::string huge = write("huge.json", R"({"a": 1e400})");
  EXPECT_EQ(error(huge).rfind(huge + ": invalid JSON: ", 0), 0u) << error(huge);
  const std::string deep = write("deep.json", std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_EQ(error(deep), deep + ": nested deeper than 64 levels (config file)");
  EXPECT_EQ(error(::testing::TempDir()), ::testing::TempDir() + ": not a regular file (config file)");
  EXPECT_EQ(error("/dev/zero"), "/dev/zero: not a regular file (config file)");
  EXPECT_EQ(error("/no/such/file.json"), "/no/such/file.json: cannot open config file");
}

}  // namespace
}  // namespace twinfer
