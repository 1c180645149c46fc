// The HTTP server of the serving processes against hostile clients, over loopback: a client that
// trickles its request, hundreds of idle connections, oversized headers, other methods; and the
// same against a real `twinfer serve` process's /healthz.
#include "runtime/rpc/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/runtime/net_testing.h"
#include "tests/runtime/process_testing.h"
#include "tests/testing.h"

namespace twinfer::runtime {
namespace {

using Clock = std::chrono::steady_clock;

void send_text(int fd, const std::string& text) { ::send(fd, text.data(), text.size(), MSG_NOSIGNAL); }

// What arrives on `fd` until the peer closes or `seconds` pass without a byte.
std::string receive(int fd, double seconds) {
  timeval tv{static_cast<time_t>(seconds), static_cast<suseconds_t>((seconds - double(time_t(seconds))) * 1e6)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, std::size_t(n));
  return out;
}

// True when `fd`'s peer closed it (recv returns 0) within `seconds`.
bool closed_by_peer(int fd, double seconds) {
  timeval tv{static_cast<time_t>(seconds), static_cast<suseconds_t>((seconds - double(time_t(seconds))) * 1e6)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
  }
  return n == 0;
}

// GET `path`, waiting at most `seconds` for each part of the answer: a server that serves one
// connection at a time, stuck behind a slow client, does not answer in time.
bool healthy_within(int port, double seconds) {
  const int fd = testing::connect_to(port);
  if (fd < 0) return false;
  send_text(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string response = receive(fd, seconds);
  ::close(fd);
  return response.rfind("HTTP/1.1 200", 0) == 0 && response.find("\r\n\r\nok\n") != std::string::npos;
}

HttpResponse pages(const std::string& path) {
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  return {404, "text/plain; charset=utf-8", "not found\n"};
}

TEST(HttpServer, ATricklingClientNeitherBlocksOthersNorOutlivesItsDeadline) {
  HttpServerOptions o;
  o.request_deadline_ms = 1500;
  HttpServer server("127.0.0.1", 0, pages, o);
  const int slow = testing::connect_to(server.port());
  ASSERT_GE(slow, 0);
  send_text(slow, "GET /healthz HTTP/1.1\r\n");
  // While it trickles one byte at a time, every other client is answered.
  std::thread trickle([slow] {
    const std::string rest = "Host: x\r\nX-Slow: ";
    for (char c : rest + std::string(50, 'a')) {
      send_text(slow, std::string(1, c));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  int answered = 0;
  for (int i = 0; i < 5; ++i) answered += healthy_within(server.port(), 3);
  EXPECT_EQ(answered, 5);
  trickle.join();
  // Its whole request did not arrive within the deadline: cut off without an answer.
  EXPECT_TRUE(closed_by_peer(slow, 10));
  ::close(slow);
}

TEST(HttpServer, HundredsOfIdleConnectionsLockNoOneOut) {
  HttpServer server("127.0.0.1", 0, pages);
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) {
    const int fd = testing::connect_to(server.port());
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  int answered = 0;
  for (int i = 0; i < 20; ++i) answered += healthy_within(server.port(), 3);
  EXPECT_EQ(answered, 20);
  for (int fd : idle) ::close(fd);
}

TEST(HttpServer, PastTheConnectionLimitNewConnectionsAreClosedUntilIdleOnesExpire) {
  HttpServerOptions o;
  o.max_connections = 20;
  o.request_deadline_ms = 1000;
  HttpServer server("127.0.0.1", 0, pages, o);
  std::vector<int> idle;
  for (int i = 0; i < 20; ++i) idle.push_back(testing::connect_to(server.port()));
  // Give the server the time to accept them all before the one over the limit.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const int over = testing::connect_to(server.port());
  ASSERT_GE(over, 0);
  send_text(over, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(receive(over, 5), "");  // closed without an answer
  ::close(over);
  for (int fd : idle) EXPECT_TRUE(closed_by_peer(fd, 10));  // each idle one cut at its deadline
  EXPECT_EQ(testing::http_get(server.port(), "/healthz").rfind("HTTP/1.1 200", 0), 0u);
  for (int fd : idle) ::close(fd);
}

TEST(HttpServer, BadRequestsGetTheirStatusAndKeepAliveServesSeveral) {
  HttpServer server("127.0.0.1", 0, pages);
  auto exchange = [&](const std::string& request) {
    const int fd = testing::connect_to(server.port());
    send_text(fd, request);
    const std::string response = receive(fd, 5);
    ::close(fd);
    return response;
  };
  EXPECT_EQ(exchange("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").rfind("HTTP/1.1 405", 0), 0u);
  EXPECT_EQ(exchange("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n").rfind("HTTP/1.1 431", 0),
            0u);
  EXPECT_EQ(exchange("\x16\x03\x01 garbage\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(exchange("GET /nothing?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
  const std::string head = exchange("HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_NE(head.find("Content-Length: 3\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.substr(head.find("\r\n\r\n") + 4), "");
  // Two requests on one connection, the second closing it.
  const std::string two = exchange(
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::size_t answers = 0;
  for (std::size_t at = two.find("HTTP/1.1 200"); at != std::string::npos; at = two.find("HTTP/1.1 200", at + 1)) {
    ++answers;
  }
  EXPECT_EQ(answers, 2u) << two;
}

TEST(HttpServer, AnAddressItCannotListenOnIsAnError) {
  HttpServer first("127.0.0.1", 0, pages);
  EXPECT_NE(testing::error_of([&] { HttpServer second("127.0.0.1", first.port(), pages); })
                .find("metrics server: cannot listen on 127.0.0.1:" + std::to_string(first.port())),
            std::string::npos);
}

// The real process: `twinfer serve` answers /healthz while a client trickles and 200 idle
// connections sit on its metrics port.
TEST(HttpServer, AServeProcessAnswersHealthChecksUnderHostileClients) {
  const std::string dir = ::testing::TempDir() + "/http_serve_" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0755);
  testing::Children children(dir);
  const int port = testing::free_port();
  const int metrics = testing::free_port();
  const pid_t serve = children.spawn(
      {"serve", "--config", std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json", "--spawn-workers", "--listen",
       "127.0.0.1:" + std::to_string(port), "--metrics-port", std::to_string(metrics)},
      "serve.log");
  ASSERT_TRUE(children.wait_listening(serve, port, 60)) << children.log("serve.log");
  ASSERT_TRUE(children.wait_listening(serve, metrics, 10)) << children.log("serve.log");
  const int slow = testing::connect_to(metrics);
  send_text(slow, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: a");
  std::vector<int> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(testing::connect_to(metrics));
  int answered = 0;
  for (int i = 0; i < 5; ++i) answered += healthy_within(metrics, 3);
  EXPECT_EQ(answered, 5) << children.log("serve.log");
  EXPECT_NE(testing::http_get(metrics, "/metrics").find("twinfer_worker_up"), std::string::npos);
  ::close(slow);
  for (int fd : idle) ::close(fd);
  ::kill(serve, SIGTERM);
  EXPECT_EQ(children.wait_exit(serve, 60), 0) << children.log("serve.log");
}

}  // namespace
}  // namespace twinfer::runtime
