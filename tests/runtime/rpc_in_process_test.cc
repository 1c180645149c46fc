// The gRPC transport in one process: three worker services and a router service on loopback
// (ports chosen by the OS), driven by the replay client.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <memory>
#include <set>
#include <string>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "runtime/rpc/replay_client.h"
#include "runtime/rpc/router_server.h"
#include "runtime/rpc/twinfer.grpc.pb.h"
#include "runtime/rpc/worker_server.h"
#include "tests/runtime/runtime_testing.h"
#include "tests/runtime/net_testing.h"

namespace twinfer::runtime {
namespace {

using testing::http_get;

const std::vector<std::string> kThreeWorkers = {"cluster.hosts.0.gpus=3", "cluster.hosts.0.instances.0.count=3"};

// Three workers and a router on 127.0.0.1, torn down in order (router first).
struct Cluster {
  explicit Cluster(const RunConfig& config) {
    std::vector<std::string> addresses;
    for (int i = 0; i < 3; ++i) {
      WorkerServerOptions w;
      w.index = i;
      workers.push_back(std::make_unique<WorkerServer>(config, w));
      addresses.push_back(workers.back()->address());
    }
    RouterServerOptions r;
    r.metrics_port = 0;
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

TEST(RpcInProcess, EveryRequestEndsOnceOnAWorkerWithOrderedTimes) {
  RunConfig config = testing::cpu_tiny_config(kThreeWorkers);
  Cluster cluster(config);
  Trace trace = testing::small_trace(40, 40);
  ReplayRun run = replay_trace(trace, cluster.router->address(), {});

  ASSERT_EQ(run.results.size(), 40u);
  std::set<RequestId> ids;
  std::set<int> used;
  int completed = 0, rejected = 0, dropped = 0;
  for (std::size_t i = 0; i < run.results.size(); ++i) {
    const ReplayedRequest& r = run.results[i];
    EXPECT_EQ(r.id, i);
    ids.insert(r.id);
    completed += r.outcome == Outcome::kCompleted;
    rejected += r.outcome == Outcome::kRejected;
    dropped += r.outcome == Outcome::kDropped;
    if (r.outcome != Outcome::kCompleted) continue;
    ASSERT_GE(r.worker, 0);
    ASSERT_LT(r.worker, 3);
    used.insert(r.worker);
    const TimeUs arrival = run.trace.requests[i].arrival_us;
    EXPECT_LE(arrival, r.start_us) << "request " << i;
    EXPECT_LE(r.start_us, r.first_token_us) << "request " << i;
    EXPECT_LE(r.first_token_us, r.end_us) << "request " << i;
    EXPECT_LT(r.end_us - arrival, 60'000'000) << "request " << i;  // relative times, not raw clock readings
  }
  EXPECT_EQ(ids.size(), 40u);
  EXPECT_EQ(completed + rejected + dropped, 40);
  EXPECT_EQ(completed, 40);  // accept_all on healthy workers
  EXPECT_EQ(used.size(), 3u) << "least_outstanding spreads overlapping requests over every worker";

  // The Recorder's view of the same run, with the workers' batches.
  nlohmann::json s = record_replay(run, {"cpu/cpu0", "cpu/cpu1", "cpu/cpu2"}, config.workload.slo, 1.0, "");
  EXPECT_EQ(s["requests"]["total"], 40);
  EXPECT_EQ(s["requests"]["completed"], 40);
  EXPECT_TRUE(run.batch_errors.empty());
  ASSERT_FALSE(run.batches.empty());
  int batches = 0;
  for (const auto& w : s["workers"]) {
    EXPECT_GT(w["batches"].get<int>(), 0) << w["name"];
    batches += w["batches"].get<int>();
  }
  EXPECT_EQ(batches, static_cast<int>(run.batches.size()));
  EXPECT_GE(run.batches.front().start_us, 0);
}

// Sends `bytes` as the body of a unary call, as a peer with a broken serializer would.
grpc::Status raw_unary_call(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                            const std::string& bytes) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

TEST(RpcInProcess, MalformedOrOutOfBoundsRequestsAreRefusedAndServingGoesOn) {
  RunConfig config = testing::cpu_tiny_config(kThreeWorkers);
  Cluster cluster(config);
  auto router_channel = grpc::CreateChannel(cluster.router->address(), grpc::InsecureChannelCredentials());
  auto worker_channel = grpc::CreateChannel(cluster.workers[0]->address(), grpc::InsecureChannelCredentials());

  rpc::InferRequest bad;
  bad.set_id(9);
  bad.set_input_tokens(-3);
  bad.set_output_tokens(2);
  {
    grpc::ClientContext context;
    rpc::InferResult result;
    const grpc::Status s = rpc::Router::NewStub(router_channel)->Infer(&context, bad, &result);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(result.outcome(), rpc::REJECTED);
    EXPECT_EQ(result.reason(), "bad request: InferRequest 9: input_tokens: negative token count -3");
  }
  bad.set_input_tokens(4);
  bad.set_output_tokens(1 << 30);
  {
    grpc::ClientContext context;
    rpc::InferResult result;
    const grpc::Status s = rpc::Worker::NewStub(worker_channel)->Submit(&context, bad, &result);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(result.outcome(), rpc::REJECTED);
    EXPECT_EQ(result.reason(),
              "bad request: InferRequest 9: output_tokens: 1073741824 tokens is more than the limit of 1048576");
  }
  // A message cut inside a field never reaches the services: gRPC refuses to parse it.
  rpc::InferRequest good;
  good.set_id(10);
  good.set_input_tokens(8);
  good.set_output_tokens(2);
  good.set_model("tiny-llm");
  std::string truncated = good.SerializeAsString();
  truncated.resize(truncated.size() - 3);
  EXPECT_FALSE(raw_unary_call(router_channel, "/twinfer.rpc.Router/Infer", truncated).ok());
  EXPECT_FALSE(raw_unary_call(worker_channel, "/twinfer.rpc.Worker/Submit", "\xff\xff\xff").ok());

  // Both go on serving.
  ReplayRun run = replay_trace(testing::small_trace(6, 40), cluster.router->address(), {});
  ASSERT_EQ(run.results.size(), 6u);
  for (const auto& r : run.results) EXPECT_EQ(r.outcome, Outcome::kCompleted) << r.reason;
  grpc::ClientContext context;
  rpc::InferResult result;
  EXPECT_TRUE(rpc::Worker::NewStub(worker_channel)->Submit(&context, good, &result).ok());
  EXPECT_EQ(result.outcome(), rpc::COMPLETED);
}

TEST(RpcInProcess, RejectionsAreAnsweredAtOnceWithTheAdmissionsReason) {
  RunConfig config = testing::cpu_tiny_config(
      {"cluster.hosts.0.gpus=3", "cluster.hosts.0.instances.0.count=3",
       "policies.admission={\"name\":\"token_bucket\",\"rate_per_s\":5,\"burst\":4}"});
  Cluster cluster(config);
  ReplayRun run = replay_trace(testing::small_trace(20, 200), cluster.router->address(), {});
  int rejected = 0;
  for (const auto& r : run.results) {
    if (r.outcome != Outcome::kRejected) continue;
    ++rejected;
    EXPECT_EQ(r.reason, "rate limited (token_bucket)");
    EXPECT_EQ(r.worker, -1);
    EXPECT_EQ(r.start_us, -1);
  }
  // A burst of 4 and 5 tokens/s over the trace's ~0.1 s admit at most 5 of 20.
  EXPECT_GE(rejected, 15);
  nlohmann::json s = record_replay(run, {}, {}, 1.0, "");
  EXPECT_EQ(s["requests"]["rejected"], rejected);
  EXPECT_EQ(s["requests"]["total"], 20);
}

TEST(RpcInProcess, MetricsAndHealthzAnswerOverHttp) {
  RunConfig config = testing::cpu_tiny_config(kThreeWorkers);
  Cluster cluster(config);
  ReplayRun run = replay_trace(testing::small_trace(6, 50), cluster.router->address(), {});
  const int port = cluster.router->metrics_port();
  ASSERT_GT(port, 0);

  const std::string metrics = http_get(port, "/metrics");
  EXPECT_EQ(metrics.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << metrics;
  for (const char* line :
       {"twinfer_requests_total{outcome=\"completed\"} 6\n", "twinfer_requests_total{outcome=\"rejected\"} 0\n",
        "twinfer_requests_total{outcome=\"dropped\"} 0\n", "twinfer_latency_seconds_count 6\n",
        "twinfer_latency_seconds_bucket{le=\"+Inf\"} 6\n", "twinfer_worker_up{worker=\"cpu/cpu0\"} 1\n",
        "twinfer_worker_up{worker=\"cpu/cpu2\"} 1\n", "twinfer_worker_in_flight{worker=\"cpu/cpu1\"} 0\n",
        "# TYPE twinfer_ttft_seconds histogram\n", "# TYPE twinfer_worker_waiting gauge\n"}) {
    EXPECT_NE(metrics.find(line), std::string::npos) << "missing: " << line << metrics;
  }
  // Without traffic the request counters stay put (worker gauges may still settle: the last
  // worker reports its state after its answer went out).
  const std::string again = http_get(port, "/metrics");
  EXPECT_NE(again.find("twinfer_requests_total{outcome=\"completed\"} 6\n"), std::string::npos) << again;
  EXPECT_NE(again.find("twinfer_latency_seconds_count 6\n"), std::string::npos) << again;

  const std::string healthz = http_get(port, "/healthz");
  EXPECT_EQ(healthz.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << healthz;
  EXPECT_EQ(healthz.substr(healthz.size() - 7), "\r\n\r\nok\n") << healthz;
  EXPECT_EQ(http_get(port, "/nope").rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u);
}

TEST(RpcInProcess, ConfigMismatchesAreClearErrors) {
  RunConfig config = testing::cpu_tiny_config();
  WorkerServerOptions w;
  w.index = 5;
  try {
    WorkerServer bad(config, w);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--id 5: the config has 2 instance(s)"), std::string::npos) << e.what();
  }
  try {
    RouterServer bad(config, {"127.0.0.1:1"}, {});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1 address(es) for the config's 2 instance(s)"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace twinfer::runtime
