#include "runtime/engine/noop_backend.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "runtime/backend/step_checks.h"

namespace twinfer::runtime {
namespace {

class NoopBackend final : public Backend {
 public:
  NoopBackend(const TransformerConfig& config, const BackendLimits& limits) : config_(config), limits_(limits) {}

  // The same checks as every backend, so that a plan the CPU backend would reject is rejected
  // here too.
  void step(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next_tokens) override {
    check_step(batch, config_, limits_, "noop");
    next_tokens.clear();
    for (const StepSequence& s : batch) {
      if (s.sample) next_tokens.push_back(0);
    }
  }

  const std::vector<float>& last_logits() const override { return no_logits_; }

  std::vector<float> encode(const std::vector<std::int32_t>& lengths, std::int32_t padded_length) override {
    check_encode(lengths, padded_length, config_, limits_, "noop");
    return std::vector<float>(lengths.size(), 0.0f);
  }

  void copy_kv(const KvTransfers& copies) override { check_copies(copies, limits_, "noop"); }

  std::string name() const override { return "noop"; }

 private:
  TransformerConfig config_;
  BackendLimits limits_;
  std::vector<float> no_logits_;
};

}  // namespace

std::unique_ptr<Backend> make_noop_backend(const TransformerConfig& config, const BackendLimits& limits) {
  if (limits.kv_blocks <= 0 || limits.block_tokens <= 0 || limits.max_batch_tokens <= 0 ||
      limits.max_batch_sequences <= 0)
    throw Error("noop backend: kv_blocks, block_tokens, max_batch_tokens and max_batch_sequences must be > 0");
  if (config.vocab <= 0 || config.max_context <= 0)
    throw Error("noop backend: vocab and max_context must be > 0");
  return std::make_unique<NoopBackend>(config, limits);
}

}  // namespace twinfer::runtime
