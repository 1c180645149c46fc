// Shared by the fuzz targets: the per-input size cap and the check that aborts on a broken
// invariant (libFuzzer reports an abort as a crash, with the input that caused it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace twinfer::fuzz {

// Inputs past this size only slow the fuzzer down; long lines, long strings and deep nesting fit.
inline constexpr std::size_t kMaxInputBytes = 1024 * 1024;

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Aborts with `what` unless `ok`: a broken invariant is a finding, like a crash.
inline void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

}  // namespace twinfer::fuzz
