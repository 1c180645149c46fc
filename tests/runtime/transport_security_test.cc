// TLS and the shared bearer token, over loopback: a router and a worker in this process with the
// test certificates (tests/runtime/tls/), clients with and without the CA and the token, HTTPS
// /metrics; then real serve, worker and replay processes.
#include "runtime/rpc/transport_security.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "runtime/rpc/router_server.h"
#include "runtime/rpc/twinfer.grpc.pb.h"
#include "runtime/rpc/worker_server.h"
#include "tests/runtime/net_testing.h"
#include "tests/runtime/process_testing.h"
#include "tests/runtime/runtime_testing.h"
#include "tests/testing.h"

namespace twinfer::runtime {
namespace {

const std::string kTls = std::string(TWINFER_SOURCE_DIR) + "/tests/runtime/tls/";

std::string temp_file(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path) << text;
  return path;
}

TransportSecurity server_side(const std::string& token = "s3cret-token") {
  TransportSecurity s;
  s.cert_file = kTls + "server.pem";
  s.key_file = kTls + "server.key";
  s.ca_file = kTls + "ca.pem";  // the router verifies its worker
  s.token = token;
  return s;
}

// A worker and a router serving TLS and requiring the token, with /metrics over HTTPS.
struct SecureCluster {
  SecureCluster() {
    config = testing::cpu_tiny_config({"cluster.hosts.0.gpus=1", "cluster.hosts.0.instances.0.count=1"});
    WorkerServerOptions w;
    w.security = server_side();
    worker = std::make_unique<WorkerServer>(config, w);
    RouterServerOptions r;
    r.log = false;
    r.metrics_port = 0;
    r.security = server_side();
    router = std::make_unique<RouterServer>(config, std::vector<std::string>{worker->address()}, r);
  }
  ~SecureCluster() {
    router->shutdown();
    worker->shutdown();
  }
  RunConfig config;
  std::unique_ptr<WorkerServer> worker;
  std::unique_ptr<RouterServer> router;
};

// One Infer of a small request to `address` as a client with `security` (ca_file, token).
grpc::Status infer(const std::string& address, const TransportSecurity& security, rpc::InferResult& result) {
  auto stub = rpc::Router::NewStub(grpc::CreateChannel(address, channel_credentials(security)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  authorize(context, security);
  rpc::InferRequest q;
  q.set_id(7);
  q.set_input_tokens(16);
  q.set_output_tokens(4);
  return stub->Infer(&context, q, &result);
}

TransportSecurity client(const std::string& ca, const std::string& token) {
  TransportSecurity s;
  s.ca_file = ca.empty() ? "" : kTls + ca;
  s.token = token;
  return s;
}

// GET over HTTPS, verifying the server against the test CA; the status code, or -1 when the TLS
// connection fails.
int https_get(int port, const std::string& path, const std::string& token) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  namespace net = boost::asio;
  net::io_context ioc;
  net::ssl::context ctx(net::ssl::context::tls_client);
  ctx.load_verify_file(kTls + "ca.pem");
  ctx.set_verify_mode(net::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  beast::error_code ec;
  net::ip::tcp::resolver resolver(ioc);
  beast::get_lowest_layer(stream).connect(resolver.resolve("127.0.0.1", std::to_string(port)), ec);
  if (ec) return -1;
  stream.handshake(net::ssl::stream_base::client, ec);
  if (ec) return -1;
  http::request<http::empty_body> req{http::verb::get, path, 11};
  req.set(http::field::host, "127.0.0.1");
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  http::write(stream, req, ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res, ec);
  if (ec) return -1;
  return static_cast<int>(res.result_int());
}

TEST(TransportSecurity, OnlyAClientWithTheCaAndTheTokenIsServed) {
  SecureCluster cluster;
  const std::string address = cluster.router->address();
  rpc::InferResult result;
  grpc::Status s = infer(address, client("ca.pem", "s3cret-token"), result);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(result.outcome(), rpc::COMPLETED) << result.reason();
  s = infer(address, client("ca.pem", ""), result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(s.error_message(), "missing or wrong bearer token");
  s = infer(address, client("ca.pem", "s3cret-tokeX"), result);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // No TLS, or a server it cannot verify: no connection at all.
  EXPECT_EQ(infer(address, client("", "s3cret-token"), result).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(infer(address, client("other_ca.pem", "s3cret-token"), result).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

// The router's limits cannot be bypassed by calling a worker directly without the token.
TEST(TransportSecurity, AWorkerRefusesCallsWithoutTheToken) {
  SecureCluster cluster;
  auto worker = rpc::Worker::NewStub(
      grpc::CreateChannel(cluster.worker->address(), channel_credentials(client("ca.pem", ""))));
  rpc::InferRequest q;
  q.set_input_tokens(16);
  q.set_output_tokens(4);
  for (int with_token = 0; with_token < 2; ++with_token) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (with_token) authorize(context, client("ca.pem", "s3cret-token"));
    rpc::InferResult result;
    grpc::Status s = worker->Submit(&context, q, &result);
    if (with_token) {
      EXPECT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(result.outcome(), rpc::COMPLETED);
    } else {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    }
  }
  grpc::ClientContext context;
  rpc::WorkerState state;
  EXPECT_EQ(worker->State(&context, rpc::StateQuery(), &state).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST(TransportSecurity, MetricsNeedTheTokenOverHttpsAndHealthzIsOpen) {
  SecureCluster cluster;
  const int port = cluster.router->metrics_port();
  EXPECT_EQ(https_get(port, "/metrics", "s3cret-token"), 200);
  EXPECT_EQ(https_get(port, "/metrics", ""), 401);
  EXPECT_EQ(https_get(port, "/metrics", "wrong"), 401);
  EXPECT_EQ(https_get(port, "/healthz", ""), 200);
  // Plaintext on the HTTPS port gets no page.
  EXPECT_EQ(testing::http_get(port, "/healthz").find("ok\n"), std::string::npos);
}

TEST(TransportSecurity, TokenFilesAndTlsFilesAreChecked) {
  EXPECT_EQ(read_token_file(temp_file("token", "  abc-DEF_123\n")), "abc-DEF_123");
  const std::string empty = temp_file("empty_token", " \n");
  EXPECT_EQ(testing::error_of([&] { read_token_file(empty); }), "--token-file " + empty + ": the token is empty");
  const std::string spaced = temp_file("spaced_token", "two words");
  EXPECT_NE(testing::error_of([&] { read_token_file(spaced); }).find("printable ASCII without spaces"),
            std::string::npos);
  const std::string big = temp_file("big_token", std::string(5000, 'a'));
  EXPECT_EQ(testing::error_of([&] { read_token_file(big); }),
            "--token-file " + big + ": 5000 bytes, more than the 4096 allowed");
  EXPECT_EQ(testing::error_of([&] { read_token_file("/dev/zero"); }), "--token-file /dev/zero: not a regular file");
  TransportSecurity half;
  half.cert_file = kTls + "server.pem";
  EXPECT_EQ(testing::error_of([&] { check_security(half); }), "--tls-cert needs --tls-key");
  TransportSecurity missing = server_side();
  missing.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(testing::error_of([&] { check_security(missing); }), "--tls-ca /nonexistent/ca.pem: cannot read it");
}

TEST(TransportSecurity, BeyondLoopbackAServerWarnsOfWhatItLacks) {
  TransportSecurity none;
  EXPECT_EQ(exposure_warning("127.0.0.1:50060", "the router", none), "");
  EXPECT_EQ(exposure_warning("localhost:1", "the router", none), "");
  EXPECT_NE(exposure_warning("0.0.0.0:50060", "the router", none).find("with no TLS and no token"), std::string::npos);
  TransportSecurity token_only;
  token_only.token = "t";
  EXPECT_NE(exposure_warning("10.0.0.5:1", "the worker", token_only).find("with no TLS: its token"), std::string::npos);
  EXPECT_EQ(exposure_warning("[::]:1", "the router", server_side()), "");
  EXPECT_TRUE(bearer_matches("Bearer abc", "abc"));
  EXPECT_FALSE(bearer_matches("Bearer abcd", "abc"));
  EXPECT_FALSE(bearer_matches("bearer abc", "abc"));
  EXPECT_TRUE(bearer_matches("", ""));
}

// Real processes: serve spawns its workers with its certificate and token, replay reaches it with
// the CA and the token; a replay without the token is refused every request.
TEST(TransportSecurity, ServeSpawnedWorkersAndReplayOverTlsWithAToken) {
  const std::string dir = ::testing::TempDir() + "/tls_serve_" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0755);
  testing::Children children(dir);
  const std::string token = temp_file("serve_token", "proc-token-42\n");
  const std::string trace = temp_file("tls_trace.csv", "arrival_s,input_tokens,output_tokens\n0,16,4\n0.05,16,4\n0.1,16,4\n");
  const int port = testing::free_port();
  const std::string config = std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json";
  const pid_t serve = children.spawn({"serve", "--config", config, "--spawn-workers", "--listen",
                                      "127.0.0.1:" + std::to_string(port), "--tls-cert", kTls + "server.pem",
                                      "--tls-key", kTls + "server.key", "--tls-ca", kTls + "ca.pem", "--token-file",
                                      token},
                                     "serve.log");
  ASSERT_TRUE(children.wait_listening(serve, port, 60)) << children.log("serve.log");
  const std::string target = "127.0.0.1:" + std::to_string(port);
  EXPECT_EQ(children.run({"replay", "--trace", trace, "--target", target, "--tls-ca", kTls + "ca.pem", "--token-file",
                          token, "--out", dir + "/ok"},
                         "replay_ok.log", 60),
            0)
      << children.log("replay_ok.log") << children.log("serve.log");
  const std::string ok = testing::slurp(dir + "/ok/requests.csv");
  EXPECT_EQ(testing::count_of(ok, ",completed,"), 3) << ok;
  EXPECT_EQ(children.run({"replay", "--trace", trace, "--target", target, "--tls-ca", kTls + "ca.pem", "--out",
                          dir + "/refused"},
                         "replay_refused.log", 60),
            0)
      << children.log("replay_refused.log");
  const std::string refused = testing::slurp(dir + "/refused/requests.csv");
  EXPECT_EQ(testing::count_of(refused, ",completed,"), 0) << refused;
  EXPECT_EQ(testing::count_of(refused, "missing or wrong bearer token"), 3) << refused;
  ::kill(serve, SIGTERM);
  EXPECT_EQ(children.wait_exit(serve, 60), 0) << children.log("serve.log");
}

}  // namespace
}  // namespace twinfer::runtime
