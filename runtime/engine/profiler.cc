#include "runtime/engine/profiler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <cstdio>
#include <set>
#include <tuple>

#include "runtime/backend/backend.h"
#include "runtime/model/transformer_config.h"

namespace twinfer::runtime {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double micros_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

class Measurer {
 public:
  Measurer(Backend& backend, int vocab, int repeats) : backend_(backend), vocab_(vocab), repeats_(repeats) {}

  // One iteration: a `prefill`-token prompt from scratch plus one decode token for each of
  // `seqs` sequences holding `context` tokens in all (set up beforehand, untimed).
  double iteration_us(int prefill, int seqs, int context) {
    if (prefill == 0 && seqs == 0) return 1;
    std::vector<double> times;
    for (int rep = 0; rep <= repeats_; ++rep) {
      std::vector<StepSequence> batch;
      for (int s = 0; s < seqs; ++s) {
        int len = std::max(1, context / seqs);
        batch.push_back(prefilled(next_id_++, len));
      }
      if (prefill > 0) {
        StepSequence p;
        p.id = next_id_++;
        p.tokens = prompt_tokens(p.id, prefill, vocab_);
        batch.push_back(std::move(p));
      }
      auto t0 = Clock::now();
      backend_.step(batch, next_);
      double us = micros_since(t0);
      if (rep > 0) times.push_back(us);  // the first run warms caches up
      for (const auto& s : batch) backend_.release(s.id);
    }
    return median(times);
  }

  // A request-level batch: `size` prompts of total `input` tokens, then decode steps up to
  // `output` tokens each (static batching), as the worker runs it.
  double batch_us(int size, int input, int output) {
    std::vector<double> times;
    const int each = std::max(1, input / size);
    for (int rep = 0; rep <= repeats_; ++rep) {
      std::vector<StepSequence> batch;
      for (int s = 0; s < size; ++s) {
        StepSequence p;
        p.id = next_id_++;
        p.tokens = prompt_tokens(p.id, each, vocab_);
        batch.push_back(std::move(p));
      }
      auto t0 = Clock::now();
      if (output <= 1) {
        backend_.encode(std::vector<std::int32_t>(size, each), each);
      } else {
        backend_.step(batch, next_);
        for (int d = 1; d < output; ++d) {
          for (std::size_t i = 0; i < batch.size(); ++i) {
            batch[i].cached = each + d - 1;
            batch[i].tokens.assign(1, next_[i]);
          }
          backend_.step(batch, next_);
        }
      }
      double us = micros_since(t0);
      if (rep > 0) times.push_back(us);
      for (const auto& s : batch) backend_.release(s.id);
    }
    return median(times);
  }

 private:
  StepSequence prefilled(RequestId id, int len) {
    StepSequence p;
    p.id = id;
    p.tokens = prompt_tokens(id, len, vocab_);
    backend_.step({p}, next_);
    StepSequence d;
    d.id = id;
    d.cached = len;
    d.tokens.assign(1, next_.at(0));
    return d;
  }

  Backend& backend_;
  int vocab_;
  int repeats_;
  RequestId next_id_ = 1;
  std::vector<std::int32_t> next_;
};

nlohmann::json grid_json(const std::vector<double>& a, const std::vector<double>& b, const std::vector<double>& c,
                         const char* na, const char* nb, const char* nc,
                         const std::function<double(int, int, int)>& measure) {
  nlohmann::json times = nlohmann::json::array();
  for (double x : a) {
    nlohmann::json plane = nlohmann::json::array();
    for (double y : b) {
      nlohmann::json row = nlohmann::json::array();
      for (double z : c) row.push_back(std::max(1.0, std::round(measure(int(x), int(y), int(z)))));
      plane.push_back(row);
    }
    times.push_back(plane);
  }
  return {{na, a}, {nb, b}, {nc, c}, {"time_us", times}};
}

}  // namespace

nlohmann::json profile_backends(const RunConfig& config, const std::string& device, const ProfileGrid& grid,
                                bool verbose) {
  nlohmann::json entries = nlohmann::json::array();
  std::set<std::tuple<std::string, std::string, int>> done;
  for (const auto& inst : config.cluster.instances) {
    auto key = std::make_tuple(inst.device.name, inst.model.name, inst.tp());
    if (!done.insert(key).second) continue;
    TransformerConfig model = TransformerConfig::from_model(inst.model);
    int max_seq = int(std::max(*std::max_element(grid.decode_context_tokens.begin(), grid.decode_context_tokens.end()),
                               *std::max_element(grid.input_tokens.begin(), grid.input_tokens.end()))) + 256;
    model.max_context = std::max(model.max_context, max_seq);
    BackendLimits limits;
    limits.max_batch_tokens = 8192;
    limits.kv_blocks = 4 * (max_seq / limits.block_tokens + 2) *
                       int(std::max(*std::max_element(grid.decode_seqs.begin(), grid.decode_seqs.end()),
                                    *std::max_element(grid.batch_size.begin(), grid.batch_size.end())) + 1);
    auto backend = make_backend(device, model, limits);
    if (verbose) std::fprintf(stderr, "profiling %s / %s on %s\n", inst.device.name.c_str(), inst.model.name.c_str(), device.c_str());
    Measurer m(*backend, model.vocab, grid.repeats);
    nlohmann::json entry = {{"device", inst.device.name}, {"model", inst.model.name}, {"tp", inst.tp()}};
    entry["iteration"] = grid_json(grid.prefill_tokens, grid.decode_seqs, grid.decode_context_tokens, "prefill_tokens",
                                   "decode_seqs", "decode_context_tokens",
                                   [&](int p, int s, int c) { return m.iteration_us(p, s, std::max(c, s)); });
    entry["batch"] = grid_json(grid.batch_size, grid.input_tokens, grid.max_output_tokens, "batch_size", "input_tokens",
                               "max_output_tokens", [&](int b, int i, int o) { return m.batch_us(b, std::max(i, b), o); });
    entries.push_back(entry);
  }
  return {{"format", "twinfer-profile-v1"},
          {"meta", {{"device", device}, {"note", "measured by twinfer profile; medians of repeated runs"}}},
          {"entries", entries}};
}

}  // namespace twinfer::runtime
