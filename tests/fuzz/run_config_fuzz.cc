// Fuzz target: the run config (serving/run_config.h) and the policies it builds
// (serving/run_policies.h). The input is a JSON config, optionally followed by a line "--set" and
// one "a.b.c=value" override a line, applied in order before parsing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "serving/run_config.h"
#include "serving/run_policies.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

// Relative paths in a config (profile tables) resolve against configs/, as for a bundled config.
const std::string kSource = std::string(TWINFER_SOURCE_DIR) + "/configs/fuzz.json";
constexpr std::size_t kMaxBatchersBuilt = 4;

std::vector<std::string> override_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    if (end > pos) lines.emplace_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > twinfer::fuzz::kMaxInputBytes) return 0;
  const std::string_view input = twinfer::fuzz::as_text(data, size);
  constexpr std::string_view kSeparator = "\n--set\n";
  const std::size_t split = input.find(kSeparator);
  const std::string_view json_text = input.substr(0, split);
  // load_run_config() turns a JSON syntax error into twinfer::Error naming the file; the fuzzer
  // reads text from memory, so a syntax error simply ends the input here.
  nlohmann::json config = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) return 0;
  if (split != std::string_view::npos) {
    for (const std::string& line : override_lines(input.substr(split + kSeparator.size()))) {
      try {
        twinfer::apply_override(config, line);
      } catch (const twinfer::Error&) {
      }
    }
  }
  try {
    const twinfer::RunConfig rc = twinfer::parse_run_config(config, kSource);
    const twinfer::RunPolicies policies = twinfer::make_run_policies(rc, /*seed=*/1);
    twinfer::fuzz::check(policies.cost && policies.admission && policies.router, "every policy is built");
    for (std::size_t i = 0; i < rc.cluster.instances.size() && i < kMaxBatchersBuilt; ++i) {
      twinfer::fuzz::check(twinfer::make_worker_batcher(rc, rc.cluster.instances[i], *policies.cost, 1) != nullptr,
                           "every batcher is built");
    }
  } catch (const twinfer::Error&) {
  }
  return 0;
}
