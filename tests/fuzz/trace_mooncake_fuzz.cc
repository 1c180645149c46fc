// Fuzz target: the mooncake trace reader (traces/trace.h read_trace_text), on arbitrary text.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/trace_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  twinfer::fuzz::fuzz_trace_reader(data, size, "fuzz.jsonl", "mooncake");
  return 0;
}
