// The router process's Prometheus metrics: request outcomes, latency histograms (names parallel
// to summary.json's keys, in seconds), and one gauge set per worker.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/request.h"
#include "runtime/rpc/twinfer.pb.h"
#include "runtime/rpc/worker_links.h"

namespace twinfer::runtime {

// A Prometheus histogram with fixed bucket bounds in seconds.
class SecondsHistogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                     1,     2.5,  5,     10,   30,  60,   300};
  void add(double seconds);
  // The _bucket, _sum and _count lines of `name`, after its HELP and TYPE lines.
  void render(const std::string& name, const std::string& help, std::string& out) const;

 private:
  std::array<std::int64_t, kBounds.size()> counts_{};  // per bucket, not cumulative
  std::int64_t count_ = 0;
  double sum_ = 0;
};

// Thread safety: every method may be called from any thread.
class RouterMetrics {
 public:
  // A request the router answered: `request` as received (arrival on the monotonic clock) and
  // its result. Latency, TTFT, TPOT and queueing time as the Recorder defines them.
  void ended(const Request& request, const rpc::InferResult& result);
  // A failed forward was granted a retry.
  void retried();
  // The router's server went down for a restart.
  void router_restarted();
  // The whole /metrics page (Prometheus text format 0.0.4).
  std::string render(const std::vector<LinkStatus>& workers) const;

 private:
  mutable std::mutex mu_;
  std::array<std::int64_t, kOutcomeCount> outcomes_{};  // by Outcome
  std::int64_t retries_ = 0;
  std::int64_t router_restarts_ = 0;
  SecondsHistogram latency_, ttft_, tpot_, queue_;
};

// The Health rpc's answer: every worker's status; serving while any is not down.
void fill_health(const std::vector<LinkStatus>& workers, rpc::HealthStatus& health);

// `value` escaped for a Prometheus label value (backslash, quote, newline).
std::string prometheus_label(const std::string& value);

}  // namespace twinfer::runtime
