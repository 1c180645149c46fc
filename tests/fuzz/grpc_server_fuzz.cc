// Fuzz target: the gRPC services of the serving processes, a router in front of one CPU worker, in
// this process over loopback. The first byte of an input picks the method, the rest is sent as its
// request body, undecoded: the services must answer every call (any status) within its deadline,
// never crash, and go on serving valid requests. Fault injection stays off, as on a worker not
// started to take faults.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "runtime/rpc/router_server.h"
#include "runtime/rpc/twinfer.grpc.pb.h"
#include "runtime/rpc/worker_server.h"
#include "serving/run_config.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

namespace rt = twinfer::runtime;
using twinfer::fuzz::check;

const char* const kMethods[] = {"/twinfer.rpc.Router/Infer",   "/twinfer.rpc.Router/Health",
                                "/twinfer.rpc.Router/Batches", "/twinfer.rpc.Worker/Submit",
                                "/twinfer.rpc.Worker/State",   "/twinfer.rpc.Worker/Batches",
                                "/twinfer.rpc.Worker/InjectFault"};
constexpr std::size_t kMethodCount = sizeof kMethods / sizeof kMethods[0];

struct Services {
  Services() {
    const std::string path = std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json";
    config = twinfer::load_run_config(path, {"cluster.hosts.0.gpus=1", "cluster.hosts.0.instances.0.count=1",
                                             "protection.limits.max_input_tokens=256",
                                             "protection.limits.max_output_tokens=32"});
    rt::WorkerServerOptions w;
    w.index = 0;
    worker = std::make_unique<rt::WorkerServer>(config, w);
    rt::RouterServerOptions r;
    r.log = false;
    router = std::make_unique<rt::RouterServer>(config, std::vector<std::string>{worker->address()}, r);
    router_channel = grpc::CreateChannel(router->address(), grpc::InsecureChannelCredentials());
    worker_channel = grpc::CreateChannel(worker->address(), grpc::InsecureChannelCredentials());
  }
  twinfer::RunConfig config;
  std::unique_ptr<rt::WorkerServer> worker;
  std::unique_ptr<rt::RouterServer> router;
  std::shared_ptr<grpc::Channel> router_channel;
  std::shared_ptr<grpc::Channel> worker_channel;
};

Services& services() {
  static Services* s = new Services();  // lives to the end of the process
  return *s;
}

// One call with `bytes` as its request body, answered with any status (a long valid request may
// meet the deadline) or cut at its deadline: it must complete.
void call(const std::string& method, const std::string& bytes) {
  Services& s = services();
  grpc::GenericStub stub(method.find("Router") != std::string::npos ? s.router_channel : s.worker_channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  grpc::CompletionQueue cq;
  grpc::ByteBuffer response;
  grpc::Status status;
  reader = stub.PrepareUnaryCall(&context, method, request, &cq);
  reader->StartCall();
  reader->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  check(cq.Next(&tag, &ok), "the call completes");
}

bool serves() {
  twinfer::rpc::InferRequest q;
  q.set_id(1);
  q.set_input_tokens(8);
  q.set_output_tokens(2);
  auto stub = twinfer::rpc::Router::NewStub(services().router_channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  twinfer::rpc::InferResult result;
  return stub->Infer(&context, q, &result).ok() && result.outcome() == twinfer::rpc::COMPLETED;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1 || size > twinfer::fuzz::kMaxInputBytes) return 0;
  const std::string method = kMethods[data[0] % kMethodCount];
  const std::string body(twinfer::fuzz::as_text(data + 1, size - 1));
  call(method, body);
  static int count = 0;
  if (++count % 64 == 1) check(serves(), "the router still completes a valid request");
  return 0;
}
