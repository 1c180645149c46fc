// Shared fakes for unit tests of policies: hand-built views and a fake cost model; error_of().
// (The manual clock is ManualClock in policies/clock.h.)
#pragma once

#include <deque>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/cluster_config.h"
#include "policies/cluster_view.h"
#include "policies/cost_model.h"
#include "core/request.h"
#include "traces/trace.h"

namespace twinfer::testing {

// The whole content of a file ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// How many times `needle` occurs in `text` (not overlapping).
inline int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++n;
  return n;
}

// The fields of one CSV line (quoted fields may hold commas and doubled quotes).
inline std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      out.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  return out;
}

// The message of the exception that f throws (twinfer::Error or any std::exception), or
// "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

// A device profile with round numbers: 100 TFLOPS, 1000 GB/s, 80 GB.
inline DeviceProfile test_device(const std::string& name = "TEST", double tflops = 100, double gbps = 1000,
                                 double mem_gb = 80) {
  DeviceProfile d;
  d.name = name;
  d.peak_tflops = tflops;
  d.mem_bandwidth_gbps = gbps;
  d.mem_gb = mem_gb;
  d.compute_efficiency = 1.0;
  d.bandwidth_efficiency = 1.0;
  return d;
}

// A 1e9-parameter, 16-layer model with hidden 2048, 16 heads, fp16.
inline ModelSpec test_model(const std::string& name = "m") {
  ModelSpec m;
  m.name = name;
  m.params = 1e9;
  m.layers = 16;
  m.hidden = 2048;
  m.heads = 16;
  m.kv_heads = 16;
  m.ffn_hidden = 8192;
  m.kv_bytes_per_token = 2.0 * 16 * 2048 * 2;  // K and V, layers, hidden, 2 bytes
  m.weights_bytes = 2e9;
  return m;
}

// Owns instances and worker views; hands out ClusterViews over them.
//
//   ViewBuilder b;
//   b.add_worker().add_worker(test_device("SLOW", 10, 100));
//   b.worker(1).waiting = 5;
//   auto view = b.view(/*now_us=*/1000);
class ViewBuilder {
 public:
  ViewBuilder& add_worker(const DeviceProfile& device = test_device(), const ModelSpec& model = test_model(),
                          int tp = 1) {
    auto inst = std::make_unique<InstanceSpec>();
    inst->index = static_cast<int>(instances_.size());
    inst->name = "w" + std::to_string(inst->index);
    inst->host = "h" + std::to_string(inst->index);
    for (int g = 0; g < tp; ++g) inst->gpus.push_back(g);
    inst->device = device;
    inst->model = model;
    inst->gpu_link = LinkSpec{450, 1};
    WorkerView w;
    w.index = inst->index;
    w.instance = inst.get();
    instances_.push_back(std::move(inst));
    workers_.push_back(w);
    return *this;
  }
  WorkerView& worker(int i) { return workers_.at(i); }
  const InstanceSpec& instance(int i) const { return *instances_.at(i); }
  ClusterView view(TimeUs now_us = 0) const { return ClusterView{now_us, &workers_}; }
  std::size_t size() const { return workers_.size(); }

 private:
  std::deque<std::unique_ptr<InstanceSpec>> instances_;
  std::vector<WorkerView> workers_;
};

// Requests at `rate` per second for each (duration_s, rate) phase in turn, evenly spaced;
// `input` prompt tokens, `output` generated, for `model` (empty: any).
inline Trace phases(const std::vector<std::pair<double, double>>& p, int output, const std::string& model = "",
                    int input = 32) {
  Trace t;
  TimeUs start = 0;
  for (const auto& [duration_s, rate] : p) {
    const TimeUs gap = us_from_s(1.0 / rate);
    for (TimeUs at = start; at < start + us_from_s(duration_s); at += gap) {
      Request r;
      r.id = t.requests.size();
      r.arrival_us = at;
      r.input_tokens = input;
      r.output_tokens = output;
      r.model = model;
      t.requests.push_back(r);
    }
    start += us_from_s(duration_s);
  }
  t.source = "phases";
  return t;
}

inline Request make_request(RequestId id, TimeUs arrival_us = 0, int input = 100, int output = 10,
                            const std::string& model = "", int priority = 0) {
  Request r;
  r.id = id;
  r.arrival_us = arrival_us;
  r.input_tokens = input;
  r.output_tokens = output;
  r.model = model;
  r.priority = priority;
  return r;
}

// Linear, device-blind costs with round numbers, for tests that check a policy's logic rather
// than the physics: an iteration costs base + per_prefill * prefill tokens + per_decode * decode
// sequences; a request batch costs base + per_prefill * input tokens + per_decode * output tokens
// (divided by the device's peak_tflops / 100, so that a slower device is proportionally slower).
class FakeCostModel : public CostModel {
 public:
  TimeUs base_us = 1000;
  TimeUs per_prefill_token_us = 10;
  TimeUs per_decode_seq_us = 100;

  TimeUs iteration_time_us(const InstanceSpec& inst, const IterationShape& s) const override {
    return scale(inst, base_us + per_prefill_token_us * s.prefill_tokens + per_decode_seq_us * s.decode_seqs);
  }
  TimeUs batch_time_us(const InstanceSpec& inst, const RequestBatchShape& s) const override {
    return scale(inst, base_us + per_prefill_token_us * s.input_tokens + per_decode_seq_us * s.output_tokens);
  }
  std::string name() const override { return "fake"; }

 private:
  static TimeUs scale(const InstanceSpec& inst, TimeUs t) {
    return static_cast<TimeUs>(static_cast<double>(t) * 100.0 / inst.device.peak_tflops);
  }
};

}  // namespace twinfer::testing
