#include "runtime/rpc/router_metrics.h"

#include <cstdio>

#include "runtime/rpc/wire.h"

namespace twinfer::runtime {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

void SecondsHistogram::add(double seconds) {
  std::size_t b = 0;
  while (b < kBounds.size() && seconds > kBounds[b]) ++b;
  if (b < kBounds.size()) ++counts_[b];
  ++count_;
  sum_ += seconds;
}

void SecondsHistogram::render(const std::string& name, const std::string& help, std::string& out) const {
  header(out, name, "histogram", help);
  std::int64_t cumulative = 0;
  for (std::size_t b = 0; b < kBounds.size(); ++b) {
    cumulative += counts_[b];
    out += name + "_bucket{le=\"" + number(kBounds[b]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(count_) + "\n";
  out += name + "_sum " + number(sum_) + "\n";
  out += name + "_count " + std::to_string(count_) + "\n";
}

void fill_health(const std::vector<LinkStatus>& workers, rpc::HealthStatus& health) {
  bool any_up = false;
  for (const LinkStatus& s : workers) {
    rpc::WorkerHealth* w = health.add_workers();
    w->set_index(s.index);
    w->set_name(s.name);
    w->set_address(s.address);
    w->set_up(s.up);
    w->set_health(health_name(s.health));
    w->set_failures(s.failures);
    w->set_in_flight(s.in_flight);
    w->set_last_error(s.last_error);
    any_up |= s.up;
  }
  health.set_serving(any_up);
}

std::string prometheus_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void RouterMetrics::ended(const Request& request, const rpc::InferResult& result) {
  std::lock_guard<std::mutex> lock(mu_);
  const Outcome outcome = from_wire(result.outcome());
  ++outcomes_[static_cast<std::size_t>(outcome)];
  if (outcome != Outcome::kCompleted) return;
  const TimeUs arrival = request.arrival_us;
  latency_.add(s_from_us(result.end_us() - arrival));
  if (result.first_token_us() >= 0) {
    ttft_.add(s_from_us(result.first_token_us() - arrival));
    if (request.output_tokens > 1 && result.end_us() > result.first_token_us()) {
      tpot_.add(s_from_us(result.end_us() - result.first_token_us()) / (request.output_tokens - 1));
    }
  }
  if (result.start_us() >= 0) queue_.add(s_from_us(result.start_us() - arrival));
}

void RouterMetrics::retried() {
  std::lock_guard<std::mutex> lock(mu_);
  ++retries_;
}

void RouterMetrics::router_restarted() {
  std::lock_guard<std::mutex> lock(mu_);
  ++router_restarts_;
}

std::string RouterMetrics::render(const std::vector<LinkStatus>& workers) const {
  std::string out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    header(out, "twinfer_requests_total", "counter", "Requests answered by the router, by outcome.");
    for (Outcome o : {Outcome::kCompleted, Outcome::kRejected, Outcome::kDropped, Outcome::kTimedOut}) {
      out += std::string("twinfer_requests_total{outcome=\"") + outcome_name(o) + "\"} " +
             std::to_string(outcomes_[static_cast<std::size_t>(o)]) + "\n";
    }
    header(out, "twinfer_retries_total", "counter", "Failed forwards sent again to a worker (RetryPolicy).");
    out += "twinfer_retries_total " + std::to_string(retries_) + "\n";
    header(out, "twinfer_router_restarts_total", "counter", "Times the router's server went down for a restart.");
    out += "twinfer_router_restarts_total " + std::to_string(router_restarts_) + "\n";
    latency_.render("twinfer_latency_seconds", "End-to-end latency of completed requests.", out);
    ttft_.render("twinfer_ttft_seconds", "Time to first token of completed requests.", out);
    tpot_.render("twinfer_tpot_seconds", "Time per output token after the first, of completed requests.", out);
    queue_.render("twinfer_queue_seconds", "Time from arrival to the first batch, of completed requests.", out);
  }
  struct Gauge {
    const char* name;
    const char* type;
    const char* help;
    double (*value)(const LinkStatus&);
  };
  static const Gauge kGauges[] = {
      {"twinfer_worker_up", "gauge", "1 while the router may route to the worker (health not down).",
       [](const LinkStatus& s) { return s.up ? 1.0 : 0.0; }},
      {"twinfer_worker_suspect", "gauge", "1 while the worker's health is suspect (missed heartbeats, half-open breaker).",
       [](const LinkStatus& s) { return s.health == Health::kSuspect ? 1.0 : 0.0; }},
      {"twinfer_worker_waiting", "gauge", "Requests queued on the worker, as routing sees them.",
       [](const LinkStatus& s) { return double(s.view.waiting); }},
      {"twinfer_worker_running", "gauge", "Sequences in the worker's running batch.",
       [](const LinkStatus& s) { return double(s.view.running); }},
      {"twinfer_worker_in_flight", "gauge", "Requests forwarded to the worker and not yet answered.",
       [](const LinkStatus& s) { return double(s.in_flight); }},
      {"twinfer_worker_kv_blocks_free", "gauge", "Free KV-cache blocks of the worker.",
       [](const LinkStatus& s) { return double(s.view.kv_blocks_free); }},
      {"twinfer_worker_outstanding_work_seconds", "gauge", "Predicted work queued or running on the worker.",
       [](const LinkStatus& s) { return s_from_us(s.view.outstanding_work_us); }},
      {"twinfer_worker_utilization", "gauge", "Busy fraction of the worker, smoothed.",
       [](const LinkStatus& s) { return s.view.utilization_ewma; }},
      {"twinfer_worker_prefix_cache_queries_total", "counter",
       "Prompt tokens the worker's sequences looked up in its prefix cache when they started.",
       [](const LinkStatus& s) { return double(s.view.prefix_queried_tokens); }},
      {"twinfer_worker_prefix_cache_hits_total", "counter", "Prompt tokens found in the worker's prefix cache.",
       [](const LinkStatus& s) { return double(s.view.prefix_hit_tokens); }},
      {"twinfer_worker_prefix_cache_evictions_total", "counter", "Cached KV blocks the worker evicted for new ones.",
       [](const LinkStatus& s) { return double(s.view.prefix_evictions); }},
      {"twinfer_worker_prefix_cache_host_hits_total", "counter",
       "Of the prompt tokens found in the worker's prefix cache, those loaded from its host-memory tier.",
       [](const LinkStatus& s) { return double(s.view.prefix_host_hit_tokens); }},
      {"twinfer_worker_failures_total", "counter", "Times the worker's health went down.",
       [](const LinkStatus& s) { return double(s.failures); }},
      {"twinfer_worker_forward_failures_total", "counter", "Forwarded calls to the worker that failed.",
       [](const LinkStatus& s) { return double(s.forwards_failed); }},
  };
  for (const Gauge& g : kGauges) {
    header(out, g.name, g.type, g.help);
    for (const LinkStatus& s : workers) {
      out += std::string(g.name) + "{worker=\"" + prometheus_label(s.name) + "\"} " + number(g.value(s)) + "\n";
    }
  }
  return out;
}

}  // namespace twinfer::runtime
