// The router's protection, in one process: three workers and a router on loopback. Time limits,
// request limits, bad input on the wire (garbage bytes, truncated messages, absurd fields), a
// client that hangs up mid-call, a retried forward and a router restart; after each the servers go
// on serving.
#include <climits>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "runtime/rpc/replay_client.h"
#include "runtime/rpc/router_server.h"
#include "runtime/rpc/twinfer.grpc.pb.h"
#include "runtime/rpc/worker_links.h"
#include "runtime/rpc/worker_server.h"
#include "tests/runtime/runtime_testing.h"
#include "tests/testing.h"

namespace twinfer::runtime {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> three_workers(std::vector<std::string> more = {}) {
  more.insert(more.begin(), {"cluster.hosts.0.gpus=3", "cluster.hosts.0.instances.0.count=3"});
  return more;
}

struct Cluster {
  explicit Cluster(const RunConfig& config, bool allow_faults = false) {
    std::vector<std::string> addresses;
    for (int i = 0; i < 3; ++i) {
      WorkerServerOptions w;
      w.index = i;
      w.allow_faults = allow_faults;
      workers.push_back(std::make_unique<WorkerServer>(config, w));
      addresses.push_back(workers.back()->address());
    }
    RouterServerOptions r;
    r.log = false;
    router = std::make_unique<RouterServer>(config, addresses, r);
    channel = grpc::CreateCustomChannel(router->address(), grpc::InsecureChannelCredentials(),
                                        fast_reconnect_channel_args());
    stub = rpc::Router::NewStub(channel);
  }
  ~Cluster() {
    router->shutdown();
    for (auto& w : workers) w->shutdown();
  }

  // One Infer call, waited for.
  grpc::Status infer(const rpc::InferRequest& q, rpc::InferResult& result, int timeout_ms = 30000) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    return stub->Infer(&context, q, &result);
  }

  // True when a small request completes.
  bool serves() {
    rpc::InferResult result;
    return infer(request(1000, 20, 4), result).ok() && result.outcome() == rpc::COMPLETED;
  }

  static rpc::InferRequest request(std::uint64_t id, int input, int output) {
    rpc::InferRequest q;
    q.set_id(id);
    q.set_input_tokens(input);
    q.set_output_tokens(output);
    return q;
  }

  // Sequences waiting or running on every worker, as they report them.
  int sequences_on_workers() {
    int n = 0;
    for (auto& w : workers) {
      auto ch = grpc::CreateChannel(w->address(), grpc::InsecureChannelCredentials());
      auto s = rpc::Worker::NewStub(ch);
      grpc::ClientContext c;
      rpc::StateQuery e;
      rpc::WorkerState st;
      if (s->State(&c, e, &st).ok()) n += st.waiting() + st.running();
    }
    return n;
  }

  // Waits up to `seconds` for every worker to hold no sequence.
  bool workers_idle(double seconds) {
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < until) {
      if (sequences_on_workers() == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::vector<std::unique_ptr<WorkerServer>> workers;
  std::unique_ptr<RouterServer> router;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<rpc::Router::Stub> stub;
};

// `bytes` as a raw call to `method` (no protobuf encoding on the way out); returns the status.
grpc::Status raw_call(const std::string& address, const std::string& method, const std::string& bytes) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  return status;
}

// Elastic pools need a router that starts and stops its workers: without one the config key is
// refused, before any worker is contacted, instead of being served as if it were absent. Traffic
// splits need nothing more.
TEST(RouterServer, AutoscalingWithoutWorkerProcessesIsRefusedByName) {
  const RunConfig elastic = testing::cpu_config("cpu_elastic.json");
  std::vector<std::string> addresses(elastic.cluster.instances.size(), "127.0.0.1:1");
  const std::string message = testing::error_of([&] { RouterServer server(elastic, addresses, {}); });
  EXPECT_NE(message.find("cpu_elastic.json: autoscaling needs a router that starts and stops its workers"),
            std::string::npos)
      << message;
  EXPECT_NO_THROW(require_router_server_support(elastic, /*can_start_workers=*/true));
  EXPECT_NO_THROW(require_router_server_support(testing::cpu_config("cpu_canary.json"), false));
  EXPECT_NO_THROW(require_router_server_support(testing::cpu_tiny_config(), false));
}

TEST(RouterProtection, ARequestPastItsTimeLimitEndsTimedOutAndLeavesItsWorker) {
  Cluster cluster(testing::cpu_tiny_config(three_workers({"protection.request_timeout_ms=300"})));
  rpc::InferResult result;
  const auto began = Clock::now();
  ASSERT_TRUE(cluster.infer(Cluster::request(7, 16, 4000), result).ok());
  const double took_s = std::chrono::duration<double>(Clock::now() - began).count();
  EXPECT_EQ(result.outcome(), rpc::TIMED_OUT) << result.reason();
  EXPECT_EQ(result.reason(), "no answer within 300 ms");
  EXPECT_EQ(result.id(), 7u);
  EXPECT_GE(result.worker(), 0) << "it was on a worker when its time ran out";
  EXPECT_GE(took_s, 0.29);
  EXPECT_LT(took_s, 3.0);
  // 4000 tokens take the tiny model seconds; the cancelled call takes it off the worker at once.
  EXPECT_TRUE(cluster.workers_idle(1.0)) << cluster.sequences_on_workers() << " sequence(s) still on workers";
  EXPECT_NE(cluster.router->metrics_text().find("twinfer_requests_total{outcome=\"timed_out\"} 1\n"),
            std::string::npos);
  EXPECT_TRUE(cluster.serves());
}

TEST(RouterProtection, TokenLimitsAndBadFieldsAreRejectedBeforeRouting) {
  Cluster cluster(testing::cpu_tiny_config(three_workers({"protection.limits.max_input_tokens=100"})));
  rpc::InferResult result;
  ASSERT_TRUE(cluster.infer(Cluster::request(1, 200, 4), result).ok());
  EXPECT_EQ(result.outcome(), rpc::REJECTED);
  EXPECT_EQ(result.reason(), "input of 200 tokens exceeds protection.limits.max_input_tokens 100");
  EXPECT_EQ(result.worker(), -1);

  ASSERT_TRUE(cluster.infer(Cluster::request(2, -5, 4), result).ok());
  EXPECT_EQ(result.outcome(), rpc::REJECTED);
  EXPECT_EQ(result.reason(), "bad request: InferRequest 2: input_tokens: negative token count -5");
  // 2^31 does not fit the int32 field: it arrives as -2^31.
  ASSERT_TRUE(cluster.infer(Cluster::request(3, 10, INT_MIN), result).ok());
  EXPECT_EQ(result.outcome(), rpc::REJECTED);
  EXPECT_EQ(result.reason(), "bad request: InferRequest 3: output_tokens: negative token count -2147483648");
  EXPECT_TRUE(cluster.serves());
}

TEST(RouterProtection, AbsurdlyLargeRequestsAreRefusedWithoutHarmingTheServers) {
  // 128 KV blocks of 16 tokens a worker: 2048 tokens, under the model's context of 4096.
  Cluster cluster(testing::cpu_tiny_config(three_workers({"policies.batcher.kv_blocks=128"})));
  rpc::InferResult result;
  ASSERT_TRUE(cluster.infer(Cluster::request(1, INT_MAX, INT_MAX), result).ok());
  EXPECT_EQ(result.outcome(), rpc::REJECTED);
  EXPECT_EQ(result.reason(), "bad request: InferRequest 1: input_tokens: 2147483647 tokens is more than the limit of 1048576");
  // Within the wire's bounds: the router knows the model's context, and the workers report their
  // KV block size, so it knows that nothing can hold these.
  ASSERT_TRUE(cluster.infer(Cluster::request(4, 1 << 20, 8), result).ok());
  EXPECT_EQ(result.outcome(), rpc::REJECTED);
  EXPECT_EQ(result.reason(),
            "needs 1048584 tokens of context (input + output); the longest context of any model is 4096 (max_context)");
  ASSERT_TRUE(cluster.infer(Cluster::request(6, 3000, 96), result).ok());
  EXPECT_EQ(result.outcome(), rpc::REJECTED);
  EXPECT_EQ(result.reason(), "needs 3096 tokens of KV cache (input + output); the largest KV cache for any model holds 2048");
  // Straight to a worker, past the router's checks: the same reasons, for the worker's model.
  auto ch = grpc::CreateChannel(cluster.workers[0]->address(), grpc::InsecureChannelCredentials());
  auto worker = rpc::Worker::NewStub(ch);
  const std::pair<rpc::InferRequest, std::string> cases[] = {
      {Cluster::request(2, 1 << 20, 8),
       "bad request: needs 1048584 tokens of context (input + output); the longest context of model 'tiny-llm' is "
       "4096 (max_context)"},
      {Cluster::request(5, 3000, 96),
       "bad request: needs 3096 tokens of KV cache (input + output); the largest KV cache for model 'tiny-llm' holds "
       "2048"},
      {Cluster::request(3, 8, -1), "bad request: InferRequest 3: output_tokens: negative token count -1"}};
  for (const auto& c : cases) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ASSERT_TRUE(worker->Submit(&context, c.first, &result).ok());
    EXPECT_EQ(result.outcome(), rpc::REJECTED);
    EXPECT_EQ(result.reason(), c.second);
    EXPECT_EQ(result.id(), c.first.id());
  }
  EXPECT_TRUE(cluster.serves());
  EXPECT_TRUE(cluster.workers_idle(2.0));
}

TEST(RouterProtection, MessagesOverTheSizeLimitAreRefusedByTheTransport) {
  Cluster cluster(testing::cpu_tiny_config(three_workers({"protection.limits.max_request_bytes=2000"})));
  rpc::InferRequest big = Cluster::request(1, 10, 4);
  big.set_session(std::string(5000, 's'));
  rpc::InferResult result;
  grpc::Status s = cluster.infer(big, result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_TRUE(cluster.serves());
}

TEST(RouterProtection, TheQueueBoundRejectsWhatWouldOverflowIt) {
  Cluster cluster(testing::cpu_tiny_config(three_workers({"protection.limits.max_queued_requests=2"})));
  // Five long requests at once: two fit, the others are refused at once.
  std::vector<std::thread> clients;
  std::vector<rpc::InferResult> results(5);
  for (int i = 0; i < 5; ++i) {
    clients.emplace_back([&, i] { cluster.infer(Cluster::request(i, 16, 300), results[i]); });
  }
  for (auto& t : clients) t.join();
  int rejected = 0, completed = 0;
  for (const auto& r : results) {
    if (r.outcome() == rpc::REJECTED) {
      ++rejected;
      EXPECT_EQ(r.reason().rfind("queue full: 2 requests queued", 0), 0u) << r.reason();
    }
    completed += r.outcome() == rpc::COMPLETED;
  }
  EXPECT_GE(rejected, 3);
  EXPECT_EQ(completed + rejected, 5);
}

TEST(RouterProtection, GarbageAndTruncatedMessagesLeaveRouterAndWorkersServing) {
  Cluster cluster(testing::cpu_tiny_config(three_workers()));
  rpc::InferRequest valid = Cluster::request(1, 10, 4);
  valid.set_session("a session key long enough to cut in half");
  const std::string bytes = valid.SerializeAsString();
  const std::string truncated = bytes.substr(0, bytes.size() - 10);
  const std::string garbage(64, '\xff');  // field 31, wire type 7: no such wire type
  for (const std::string& payload : {garbage, truncated}) {
    grpc::Status s = raw_call(cluster.router->address(), "/twinfer.rpc.Router/Infer", payload);
    EXPECT_FALSE(s.ok());
    s = raw_call(cluster.workers[1]->address(), "/twinfer.rpc.Worker/Submit", payload);
    EXPECT_FALSE(s.ok());
    s = raw_call(cluster.workers[1]->address(), "/twinfer.rpc.Worker/InjectFault", payload);
    EXPECT_FALSE(s.ok());
  }
  EXPECT_TRUE(cluster.serves());
  EXPECT_EQ(cluster.router->metrics_text().find("twinfer_worker_up{worker=\"cpu/cpu1\"} 0"), std::string::npos);
}

TEST(RouterProtection, AClientThatHangsUpMidCallFreesItsWorker) {
  Cluster cluster(testing::cpu_tiny_config(three_workers()));
  grpc::ClientContext context;
  rpc::InferRequest q = Cluster::request(1, 16, 4000);
  rpc::InferResult result;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  cluster.stub->async()->Infer(&context, &q, &result, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(s);
    done = true;
    cv.notify_all();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_GT(cluster.sequences_on_workers(), 0);
  context.TryCancel();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(cluster.workers_idle(1.0));
  EXPECT_TRUE(cluster.serves());
  EXPECT_NE(cluster.router->metrics_text().find("twinfer_requests_total{outcome=\"dropped\"} 1\n"),
            std::string::npos);
}

TEST(RouterProtection, AForwardToAGoneWorkerIsRetriedOnAnother) {
  Cluster cluster(testing::cpu_tiny_config(three_workers()));
  cluster.workers[1]->shutdown();  // refuses connections from now on
  ReplayRun run = replay_trace(testing::small_trace(30, 100), cluster.router->address(), {});
  int completed = 0;
  for (const auto& r : run.results) {
    EXPECT_EQ(r.outcome, Outcome::kCompleted) << r.reason;
    EXPECT_NE(r.worker, 1);
    completed += r.outcome == Outcome::kCompleted;
  }
  EXPECT_EQ(completed, 30);
  const std::string metrics = cluster.router->metrics_text();
  EXPECT_NE(metrics.find("twinfer_worker_up{worker=\"cpu/cpu1\"} 0\n"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("twinfer_retries_total 0\n"), std::string::npos) << "the first forward there failed";
}

TEST(RouterProtection, WithoutRetriesAGoneWorkersRequestsEndDropped) {
  Cluster cluster(testing::cpu_tiny_config(three_workers({"protection.retry.max_attempts=1"})));
  cluster.workers[1]->shutdown();
  ReplayRun run = replay_trace(testing::small_trace(30, 100), cluster.router->address(), {});
  int dropped = 0;
  for (const auto& r : run.results) {
    if (r.outcome == Outcome::kCompleted) continue;
    ASSERT_EQ(r.outcome, Outcome::kDropped) << r.reason;
    EXPECT_EQ(r.worker, 1);
    EXPECT_EQ(r.reason.rfind("worker cpu/cpu1 unreachable: ", 0), 0u) << r.reason;
    ++dropped;
  }
  EXPECT_GE(dropped, 1);
  EXPECT_LE(dropped, 2);  // at most the requests routed before the first failure was seen
}

TEST(RouterProtection, ARouterRestartDropsWhatWasInFlightAndServesAgainOnTheSamePort) {
  Cluster cluster(testing::cpu_tiny_config(three_workers()));
  ASSERT_TRUE(cluster.serves());
  rpc::InferResult long_result;
  std::thread in_flight([&] { cluster.infer(Cluster::request(5, 16, 4000), long_result); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int port = cluster.router->port();
  cluster.router->stop_for_restart();
  in_flight.join();
  EXPECT_EQ(long_result.outcome(), rpc::DROPPED);
  EXPECT_EQ(long_result.reason(), "router restarted");
  EXPECT_TRUE(cluster.workers_idle(1.0)) << "the worker was told to drop it";
  rpc::InferResult result;
  EXPECT_EQ(cluster.infer(Cluster::request(6, 10, 4), result, 2000).error_code(), grpc::StatusCode::UNAVAILABLE);
  cluster.router->start_after_restart();
  EXPECT_EQ(cluster.router->port(), port);
  const auto until = Clock::now() + std::chrono::seconds(5);
  bool served = false;
  while (!served && Clock::now() < until) served = cluster.serves();
  EXPECT_TRUE(served);
  EXPECT_NE(cluster.router->metrics_text().find("twinfer_router_restarts_total 1\n"), std::string::npos);
}

rpc::FaultCommand slowdown(double factor) {
  rpc::FaultCommand command;
  command.set_slowdown(factor);
  return command;
}

rpc::FaultCommand device_error() {
  rpc::FaultCommand command;
  command.set_device_error(rpc::DEVICE_ERROR_ON);
  return command;
}

grpc::Status inject(const std::string& address, const rpc::FaultCommand& command) {
  auto worker = rpc::Worker::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  rpc::Empty empty;
  grpc::ClientContext c;
  return worker->InjectFault(&c, command, &empty);
}

// A client that reaches a worker's port cannot slow it down or fail it: fault injection is off
// unless the worker was started to take faults, and even then factors are bounded.
TEST(RouterProtection, FaultInjectionIsRefusedUnlessAllowedAndBounded) {
  {
    Cluster closed(testing::cpu_tiny_config(three_workers()));
    for (const rpc::FaultCommand& command : {slowdown(10000), device_error()}) {
      grpc::Status s = inject(closed.workers[0]->address(), command);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
      EXPECT_EQ(s.error_message(), "fault injection is off: this worker was not started with --allow-faults");
    }
    EXPECT_TRUE(closed.serves());
  }
  Cluster cluster(testing::cpu_tiny_config(three_workers()), /*allow_faults=*/true);
  const std::string address = cluster.workers[0]->address();
  grpc::Status s = inject(address, slowdown(0.5));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "slowdown 0.5: must be in [1, 1e6] (0: unchanged)");
  s = inject(address, slowdown(1e7));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "slowdown 10000000: must be in [1, 1e6] (0: unchanged)");
  EXPECT_TRUE(inject(address, slowdown(2)).ok());
  EXPECT_TRUE(cluster.serves());
}

// A worker whose step fails (a device error) answers the request it was running DROPPED with the
// failure and gives the others back RETURNED, as it answers everything sent to it afterwards; its
// State reports the failure.
TEST(RouterProtection, AFailedWorkerDropsWhatItRanAndReturnsTheRest) {
  Cluster cluster(testing::cpu_tiny_config(three_workers({"policies.batcher.max_num_seqs=1"})), true);
  const std::string address = cluster.workers[1]->address();
  ASSERT_TRUE(inject(address, device_error()).ok());
  auto worker = rpc::Worker::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  std::vector<rpc::InferResult> results(6);
  std::vector<std::thread> calls;
  for (std::size_t i = 0; i < results.size(); ++i) {
    calls.emplace_back([&, i] {
      grpc::ClientContext c;
      c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      EXPECT_TRUE(worker->Submit(&c, Cluster::request(i, 64, 16), &results[i]).ok());
    });
  }
  for (auto& t : calls) t.join();
  const std::string failure = "worker cpu/cpu1 failed: device error (injected)";
  int dropped = 0;
  int returned = 0;
  for (const rpc::InferResult& r : results) {
    EXPECT_EQ(r.worker_failure(), failure);
    dropped += r.outcome() == rpc::DROPPED;
    returned += r.outcome() == rpc::RETURNED;
  }
  EXPECT_EQ(dropped, 1);  // one sequence at a time: the one in the failed step
  EXPECT_EQ(returned, 5);
  rpc::WorkerState state;
  grpc::ClientContext c;
  ASSERT_TRUE(worker->State(&c, rpc::StateQuery(), &state).ok());
  EXPECT_EQ(state.failure(), failure);
  EXPECT_EQ(state.kv_blocks_free(), state.kv_blocks_total());
  // Reported once the engine gave back what it held (the answers above may come first).
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (cluster.workers[1]->failure().empty() && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(cluster.workers[1]->failure(), failure);
}

// Through the router: the request in the failed step ends dropped with the failure, not retried;
// the worker is called down at once (metrics, Health) and every later request completes elsewhere.
TEST(RouterProtection, TheRouterCallsAFailedWorkerDownAndServesOnTheOthers) {
  Cluster cluster(testing::cpu_tiny_config(three_workers({"policies.router.name=round_robin"})), true);
  ASSERT_TRUE(inject(cluster.workers[1]->address(), device_error()).ok());
  int dropped = 0;
  for (int i = 0; i < 9; ++i) {
    rpc::InferResult result;
    ASSERT_TRUE(cluster.infer(Cluster::request(std::uint64_t(i), 20, 4), result).ok());
    if (result.outcome() == rpc::COMPLETED) continue;
    ++dropped;
    EXPECT_EQ(result.outcome(), rpc::DROPPED);
    EXPECT_EQ(result.reason(), "worker cpu/cpu1 failed: device error (injected)");
    EXPECT_EQ(result.worker(), 1);
    EXPECT_EQ(result.attempts(), 1);
  }
  EXPECT_EQ(dropped, 1);
  // It stays down while it answers its state polls with the failure (dozens of polls here).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::string metrics = cluster.router->metrics_text();
  EXPECT_NE(metrics.find("twinfer_worker_up{worker=\"cpu/cpu1\"} 0"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("twinfer_worker_up{worker=\"cpu/cpu0\"} 1"), std::string::npos) << metrics;
}

}  // namespace
}  // namespace twinfer::runtime

namespace twinfer::runtime {
namespace {

// Prefix caching over gRPC: the hash ids travel with each request, the worker's prefix cache finds
// the history of a conversation sent to it again, the result carries the cached tokens, and the
// router's Prometheus page counts queries and hits per worker.
TEST(RouterPrefixCache, HashIdsTravelTheCachedTokensComeBackAndTheCountersShowTheHits) {
  Cluster cluster(testing::cpu_tiny_config(
      three_workers({"policies.batcher.prefix_caching=true", "policies.router.name=cache_aware"})));
  Trace trace = generate_synthetic(
      parse_synthetic_spec(nlohmann::json::parse(R"({"requests": 24, "rate_rps": 20,
          "input": {"kind": "uniform", "min": 16, "max": 48}, "output": {"kind": "constant", "mean": 4},
          "prefix": {"block_tokens": 16, "tenants": 1, "system_tokens": {"kind": "constant", "mean": 64},
                     "conversations": 2, "turns": {"kind": "constant", "mean": 6}}})"),
                           "spec"),
      3);
  ReplayRun run = replay_trace(trace, cluster.router->address(), {});
  std::int64_t cached = 0;
  for (const auto& r : run.results) {
    EXPECT_EQ(r.outcome, Outcome::kCompleted) << r.reason;
    EXPECT_GE(r.cached_tokens, 0);
    EXPECT_EQ(r.block_tokens, 16) << "the worker's KV block size comes back with the result";
    EXPECT_EQ(r.preemptions, 0) << "1,024 blocks per worker hold every request at once";
    cached += r.cached_tokens;
  }
  EXPECT_GT(cached, 24 * 16) << "turns of one conversation go to one worker and find its history";
  // The replay's summary counts the cached prefix in the workers' blocks too, and its timeline
  // the cached tokens of each step.
  const nlohmann::json summary = record_replay(run, {}, SloSpec{}, 1.0, "");
  EXPECT_EQ(summary["prefix_cache"]["cached_blocks"].get<std::int64_t>() * 16, cached) << summary["prefix_cache"];
  std::int64_t stepped = 0;
  for (const BatchRecord& b : run.batches) stepped += b.cached_tokens;
  EXPECT_EQ(stepped, cached) << "each request started once";
  // The counters reach the router with the workers' next state reports.
  std::int64_t hits = 0;
  for (int tries = 0; tries < 50 && hits < cached; ++tries) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::string metrics = cluster.router->metrics_text();
    hits = 0;
    for (int w = 0; w < 3; ++w) {
      const std::string name = "twinfer_worker_prefix_cache_hits_total{worker=\"cpu/cpu" + std::to_string(w) + "\"} ";
      const std::size_t at = metrics.find(name);
      ASSERT_NE(at, std::string::npos) << metrics;
      hits += std::stoll(metrics.substr(at + name.size()));
    }
  }
  EXPECT_EQ(hits, cached);
}

// llm-d's precise prefix scoring over gRPC: the workers' KV events come with their state reports,
// and the router sends a prompt to the worker that reports its prefix cached, also after the router
// restarts (its first polls bring each worker's whole cache).
TEST(RouterPrefixCache, TheKvEventsScorerFollowsTheBlocksTheWorkersReport) {
  Cluster cluster(testing::cpu_tiny_config(three_workers(
      {"policies.batcher.prefix_caching=true", "policies.router.name=scored",
       R"(policies.router.scorers=[{"name": "kv_events", "weight": 1}])"})));
  const auto prompt = [](std::uint64_t id, std::uint64_t last) {
    rpc::InferRequest q = Cluster::request(id, 80, 2);
    for (std::uint64_t h : {11u, 12u, 13u, 14u}) q.add_hash_ids(h);
    q.add_hash_ids(last);
    q.set_hash_block_tokens(16);
    return q;
  };
  rpc::InferResult first;
  ASSERT_TRUE(cluster.infer(prompt(1, 100), first).ok());
  ASSERT_EQ(first.outcome(), rpc::COMPLETED) << first.reason();
  const int holder = first.worker();
  // The worker reports the prompt's blocks to any reader: a cleared event, then the keys it caches.
  {
    auto worker = rpc::Worker::NewStub(
        grpc::CreateChannel(cluster.workers[std::size_t(holder)]->address(), grpc::InsecureChannelCredentials()));
    rpc::StateQuery query;
    query.set_kv_events(true);
    rpc::WorkerState state;
    // The worker publishes its events with its view, just after the step that answered.
    for (int tries = 0; tries < 100 && state.kv_event_keys_size() < 6; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      grpc::ClientContext c;
      ASSERT_TRUE(worker->State(&c, query, &state).ok());
    }
    ASSERT_EQ(state.kv_event_keys_size(), 6) << "cleared, then the 80-token prompt's five full blocks";
    ASSERT_EQ(state.kv_event_kinds().size(), 6u);
    EXPECT_EQ(state.kv_event_kinds()[0], char(KvEventKind::kCleared));
    for (std::size_t i = 1; i < 6; ++i) EXPECT_EQ(state.kv_event_kinds()[i], char(KvEventKind::kStored)) << i;
    EXPECT_NE(state.kv_events_log(), 0u);
  }
  const auto followed = [&](std::uint64_t from) {
    int same = 0;
    for (std::uint64_t id = from; id < from + 6; ++id) {
      rpc::InferResult r;
      EXPECT_TRUE(cluster.infer(prompt(id, 100 + id), r).ok());
      EXPECT_EQ(r.outcome(), rpc::COMPLETED) << r.reason();
      same += r.worker() == holder ? 1 : 0;
      EXPECT_EQ(r.cached_tokens(), r.worker() == holder ? 64 : 0);
    }
    return same;
  };
  // The polls bring the events within a few milliseconds; a round robin over ties would send
  // two of six to the holder.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(followed(10), 6);
  cluster.router->stop_for_restart();
  cluster.router->start_after_restart();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(followed(20), 6);
}

}  // namespace
}  // namespace twinfer::runtime
