#include "runtime/engine/noop_backend.h"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "core/error.h"
#include "runtime/backend/step_checks.h"

namespace twinfer::runtime {
namespace {

class NoopBackend final : public Backend {
 public:
  NoopBackend(const TransformerConfig& config, const BackendLimits& limits) : config_(config), limits_(limits) {}

  void step(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next_tokens) override {
    validate(batch);
    next_tokens.clear();
    for (const StepSequence& s : batch) {
      std::int32_t& length = lengths_[s.id];
      blocks_used_ += blocks_needed(length, static_cast<std::int32_t>(s.tokens.size()));
      length += static_cast<std::int32_t>(s.tokens.size());
      if (s.sample) next_tokens.push_back(0);
    }
  }

  const std::vector<float>& last_logits() const override { return no_logits_; }

  void release(RequestId id) override {
    auto it = lengths_.find(id);
    if (it == lengths_.end()) return;
    blocks_used_ -= blocks_for(it->second);
    lengths_.erase(it);
  }

  std::int64_t kv_blocks_used() const override { return blocks_used_; }

  std::vector<float> encode(const std::vector<std::int32_t>& lengths, std::int32_t padded_length) override {
    check_encode(lengths, padded_length, config_, limits_, "noop");
    return std::vector<float>(lengths.size(), 0.0f);
  }

  std::string name() const override { return "noop"; }

 private:
  std::int64_t blocks_for(std::int64_t tokens) const { return (tokens + limits_.block_tokens - 1) / limits_.block_tokens; }
  std::int64_t blocks_needed(std::int32_t held, std::int32_t tokens) const {
    return blocks_for(std::int64_t(held) + tokens) - blocks_for(held);
  }
  std::int32_t length(RequestId id) const {
    auto it = lengths_.find(id);
    return it == lengths_.end() ? 0 : it->second;
  }

  // The same checks as every backend, so that a plan the CPU backend would reject is rejected
  // here too, before any state changes.
  void validate(const std::vector<StepSequence>& batch) const {
    check_step(
        batch, config_, limits_, limits_.kv_blocks - blocks_used_, "noop", [this](RequestId id) { return length(id); },
        [this](RequestId id, std::int32_t n) { return blocks_needed(length(id), n); });
  }

  TransformerConfig config_;
  BackendLimits limits_;
  std::unordered_map<RequestId, std::int32_t> lengths_;  // tokens held per sequence
  std::int64_t blocks_used_ = 0;
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
