// Fuzz target: the HTTP server of the serving processes (runtime/rpc/http_server.h) as a client
// reaches it. Each input is the bytes a client sends on one connection (request lines, headers,
// pipelined requests); the server must answer with HTTP or close, never crash, and go on serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/rpc/http_server.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

namespace rt = twinfer::runtime;
using twinfer::fuzz::check;

rt::HttpResponse pages(const std::string& path) {
  if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
  if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", "twinfer_up 1\n"};
  return {404, "text/plain; charset=utf-8", "not found\n"};
}

rt::HttpServer& server() {
  static rt::HttpServer* s = [] {
    rt::HttpServerOptions o;
    o.request_deadline_ms = 1000;  // a truncated request is cut off quickly
    return new rt::HttpServer("127.0.0.1", 0, pages, o);
  }();
  return *s;
}

// Sends `bytes`, closes the sending side, and returns everything the server answers.
std::string exchange(const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(server().port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  check(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0, "the server accepts connections");
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server closed on a bad request: fine
    sent += std::size_t(n);
  }
  ::shutdown(fd, SHUT_WR);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, std::size_t(n));
  ::close(fd);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > twinfer::fuzz::kMaxInputBytes) return 0;
  const std::string answer = exchange(std::string(twinfer::fuzz::as_text(data, size)));
  check(answer.empty() || answer.rfind("HTTP/1.1 ", 0) == 0, "an answer is HTTP/1.1");
  static int count = 0;
  if (++count % 64 == 0) {
    const std::string health = exchange("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    check(health.rfind("HTTP/1.1 200", 0) == 0, "the server still serves /healthz");
  }
  return 0;
}
