// Benchmarks of the real runtime's serving path on the no-op backend (no model math), so that what
// is measured is the router, the gRPC transport and the worker engine's bookkeeping:
//   twinfer_bench_router latency [repeats]     closed loop, 1 request outstanding: client -> router ->
//                                              worker, against client -> worker directly; p50/p99 µs
//   twinfer_bench_router throughput [repeats]  64 and 256 requests outstanding (async client):
//                                              completed requests per second, router against one worker
//   twinfer_bench_router embedded [repeats]    run_embedded on 20k requests all arriving at 0: the
//                                              router thread + worker engines without gRPC
//   twinfer_bench_router [all] [repeats]       all three (default: 5 repeats)
// Every service listens on 127.0.0.1 on a port the OS picks. configs/cpu_tiny.json (2 workers,
// least_outstanding, continuous batching); each request has 16 input tokens and 1 output token.
// Each figure is the median of `repeats` runs, router and direct runs alternating side by side.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "core/error.h"
#include "serving/run_config.h"
#include "runtime/engine/embedded_runtime.h"
#include "runtime/rpc/router_server.h"
#include "runtime/rpc/twinfer.grpc.pb.h"
#include "runtime/rpc/worker_server.h"
#include "traces/trace.h"

namespace twinfer::bench {
namespace {

using runtime::RouterServer;
using runtime::WorkerServer;
using Clock = std::chrono::steady_clock;

constexpr int kInputTokens = 16;
constexpr int kOutputTokens = 1;
constexpr int kLatencyRequests = 2000;  // timed, per run
constexpr int kLatencyWarmup = 200;
constexpr double kThroughputWarmupS = 0.3;
constexpr double kThroughputMeasureS = 2.0;
constexpr int kEmbeddedRequests = 20000;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// Nearest-rank percentile, q in (0, 1]. REQUIRES: v sorted, not empty.
double percentile(const std::vector<double>& v, double q) {
  std::size_t rank = static_cast<std::size_t>(q * double(v.size()) + 0.999999);
  return v[std::min(v.size(), std::max<std::size_t>(rank, 1)) - 1];
}

double us_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

RunConfig noop_config() { return load_run_config(std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json"); }

// Two worker services on the no-op backend and a router service in front of them, on loopback.
struct Cluster {
  explicit Cluster(const RunConfig& config) {
    std::vector<std::string> addresses;
    for (std::size_t i = 0; i < config.cluster.instances.size(); ++i) {
      runtime::WorkerServerOptions w;
      w.index = static_cast<int>(i);
      w.device = "noop";
      workers.push_back(std::make_unique<WorkerServer>(config, w));
      addresses.push_back(workers.back()->address());
    }
    runtime::RouterServerOptions r;
    r.log = false;
    router = std::make_unique<RouterServer>(config, addresses, r);
  }
  ~Cluster() {
    router->shutdown();
    for (auto& w : workers) w->shutdown();
  }
  std::vector<std::unique_ptr<WorkerServer>> workers;
  std::unique_ptr<RouterServer> router;
};

rpc::InferRequest bench_request(std::uint64_t id) {
  rpc::InferRequest r;
  r.set_id(id);
  r.set_input_tokens(kInputTokens);
  r.set_output_tokens(kOutputTokens);
  return r;  // arrival 0: the receiving service stamps it
}

void check_completed(const grpc::Status& status, const rpc::InferResult& result, const char* target) {
  if (!status.ok()) throw Error(std::string(target) + ": call failed: " + status.error_message());
  if (result.outcome() != rpc::COMPLETED) throw Error(std::string(target) + ": request not completed: " + result.reason());
}

// One blocking call on either service: the Router's Infer or the Worker's Submit.
class SyncTarget {
 public:
  SyncTarget(const std::string& address, bool router)
      : channel_(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())), router_(router) {
    if (router) router_stub_ = rpc::Router::NewStub(channel_);
    else worker_stub_ = rpc::Worker::NewStub(channel_);
  }
  void call(std::uint64_t id) {
    grpc::ClientContext context;
    rpc::InferRequest request = bench_request(id);
    rpc::InferResult result;
    grpc::Status s = router_ ? router_stub_->Infer(&context, request, &result)
                             : worker_stub_->Submit(&context, request, &result);
    check_completed(s, result, router_ ? "router" : "worker");
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  bool router_;
  std::unique_ptr<rpc::Router::Stub> router_stub_;
  std::unique_ptr<rpc::Worker::Stub> worker_stub_;
};

struct LatencyRun {
  double p50_us = 0, p99_us = 0;
};

LatencyRun closed_loop_latency(SyncTarget& target) {
  for (int i = 0; i < kLatencyWarmup; ++i) target.call(std::uint64_t(i));
  std::vector<double> us;
  us.reserve(kLatencyRequests);
  for (int i = 0; i < kLatencyRequests; ++i) {
    const Clock::time_point start = Clock::now();
    target.call(std::uint64_t(kLatencyWarmup + i));
    us.push_back(us_since(start));
  }
  std::sort(us.begin(), us.end());
  return {percentile(us, 0.50), percentile(us, 0.99)};
}

void latency(int repeats) {
  RunConfig config = noop_config();
  Cluster cluster(config);
  SyncTarget via_router(cluster.router->address(), /*router=*/true);
  SyncTarget direct(cluster.workers[0]->address(), /*router=*/false);
  std::vector<double> router_p50, router_p99, direct_p50, direct_p99, diff_p50, diff_p99;
  for (int i = 0; i < repeats; ++i) {
    const LatencyRun r = closed_loop_latency(via_router);
    const LatencyRun d = closed_loop_latency(direct);
    router_p50.push_back(r.p50_us);
    router_p99.push_back(r.p99_us);
    direct_p50.push_back(d.p50_us);
    direct_p99.push_back(d.p99_us);
    diff_p50.push_back(r.p50_us - d.p50_us);
    diff_p99.push_back(r.p99_us - d.p99_us);
  }
  std::printf("\nclosed loop, 1 outstanding, %d requests per run (%d input, %d output tokens), median of %d runs\n",
              kLatencyRequests, kInputTokens, kOutputTokens, repeats);
  std::printf("%-36s %10s %10s\n", "path", "p50 us", "p99 us");
  std::printf("%-36s %10.1f %10.1f\n", "client -> router -> worker", median(router_p50), median(router_p99));
  std::printf("%-36s %10.1f %10.1f\n", "client -> worker", median(direct_p50), median(direct_p99));
  std::printf("%-36s %10.1f %10.1f\n", "router's own overhead (difference)", median(diff_p50), median(diff_p99));
}

// Keeps `window` calls in flight on one channel: each answer issues the next call from gRPC's
// callback thread, until stop() is called.
class AsyncLoad {
 public:
  AsyncLoad(const std::string& address, bool router, int window)
      : channel_(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())), router_(router), window_(window) {
    if (router) router_stub_ = rpc::Router::NewStub(channel_);
    else worker_stub_ = rpc::Worker::NewStub(channel_);
  }

  // Completed requests per second over kThroughputMeasureS, after kThroughputWarmupS.
  double run() {
    for (int i = 0; i < window_; ++i) issue();
    std::this_thread::sleep_for(std::chrono::duration<double>(kThroughputWarmupS));
    const std::int64_t before = completed_.load();
    const Clock::time_point start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(kThroughputMeasureS));
    const std::int64_t after = completed_.load();
    const double seconds = us_since(start) * 1e-6;
    stop_and_drain();
    if (!error_.empty()) throw Error(error_);
    return double(after - before) / seconds;
  }

 private:
  struct Call {
    grpc::ClientContext context;
    rpc::InferRequest request;
    rpc::InferResult result;
  };

  void issue() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      ++in_flight_;
    }
    auto* call = new Call;
    call->request = bench_request(next_id_++);
    auto done = [this, call](grpc::Status s) { answered(call, s); };
    if (router_) router_stub_->async()->Infer(&call->context, &call->request, &call->result, done);
    else worker_stub_->async()->Submit(&call->context, &call->request, &call->result, done);
  }

  void answered(Call* call, const grpc::Status& s) {
    try {
      check_completed(s, call->result, router_ ? "router" : "worker");
      completed_.fetch_add(1);
    } catch (const Error& e) {
      std::lock_guard<std::mutex> lock(mu_);
      if (error_.empty()) error_ = e.what();
      stopping_ = true;
    }
    delete call;
    issue();
    std::lock_guard<std::mutex> lock(mu_);
    if (--in_flight_ == 0) drained_.notify_all();
  }

  void stop_and_drain() {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    drained_.wait(lock, [this] { return in_flight_ == 0; });
  }

  std::shared_ptr<grpc::Channel> channel_;
  bool router_;
  int window_;
  std::unique_ptr<rpc::Router::Stub> router_stub_;
  std::unique_ptr<rpc::Worker::Stub> worker_stub_;
  std::atomic<std::uint64_t> next_id_{0};
  std::atomic<std::int64_t> completed_{0};
  std::mutex mu_;
  std::condition_variable drained_;
  int in_flight_ = 0;      // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::string error_;      // guarded by mu_
};

void throughput(int repeats) {
  RunConfig config = noop_config();
  Cluster cluster(config);
  std::printf("\nthroughput, async client on one channel, requests of %d input / %d output tokens, %.1f s per run "
              "after %.1f s warm-up, median of %d runs\n",
              kInputTokens, kOutputTokens, kThroughputMeasureS, kThroughputWarmupS, repeats);
  std::printf("%-12s %-36s %12s %10s\n", "outstanding", "path", "req/s", "ratio");
  for (int window : {64, 256}) {
    std::vector<double> via_router, direct;
    for (int i = 0; i < repeats; ++i) {
      via_router.push_back(AsyncLoad(cluster.router->address(), true, window).run());
      direct.push_back(AsyncLoad(cluster.workers[0]->address(), false, window).run());
    }
    const double r = median(via_router), d = median(direct);
    std::printf("%-12d %-36s %12.0f %10.2f\n", window, "client -> router -> 2 workers", r, r / d);
    std::printf("%-12d %-36s %12.0f %10.2f\n", window, "client -> 1 worker", d, 1.0);
  }
}

void embedded(int repeats) {
  RunConfig config = noop_config();
  config.sim.timeline = false;
  Trace trace;
  trace.source = "all at 0";
  for (int i = 0; i < kEmbeddedRequests; ++i) {
    Request r;
    r.id = static_cast<RequestId>(i);
    r.input_tokens = kInputTokens;
    r.output_tokens = kOutputTokens;
    trace.requests.push_back(r);
  }
  runtime::EmbeddedRunOptions options;
  options.device = "noop";
  std::vector<double> rates;
  for (int i = 0; i < repeats; ++i) {
    nlohmann::json summary = runtime::run_embedded(config, trace, options);
    if (summary["requests"]["completed"].get<int>() != kEmbeddedRequests)
      throw Error("embedded: " + summary["requests"].dump());
    rates.push_back(double(kEmbeddedRequests) / summary["run"]["wall_s"].get<double>());
  }
  std::printf("\nembedded (run_embedded, no gRPC), %d requests arriving at 0, 2 workers, median of %d runs\n",
              kEmbeddedRequests, repeats);
  std::printf("%-36s %12s\n", "path", "req/s");
  std::printf("%-36s %12.0f\n", "router thread -> 2 worker engines", median(rates));
}

}  // namespace
}  // namespace twinfer::bench

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "all";
  const int repeats = argc > 2 ? std::max(1, std::atoi(argv[2])) : 5;
  if (what != "all" && what != "latency" && what != "throughput" && what != "embedded") {
    std::fprintf(stderr, "usage: twinfer_bench_router [all|latency|throughput|embedded] [repeats]\n");
    return 2;
  }
  try {
    if (what == "all" || what == "latency") twinfer::bench::latency(repeats);
    if (what == "all" || what == "throughput") twinfer::bench::throughput(repeats);
    if (what == "all" || what == "embedded") twinfer::bench::embedded(repeats);
  } catch (const twinfer::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
