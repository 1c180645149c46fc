#include "runtime/rpc/fault_proxy.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/runtime/net_testing.h"

namespace twinfer::runtime {
namespace {

using Clock = std::chrono::steady_clock;

// A TCP echo server on 127.0.0.1 (one connection at a time).
class EchoServer {
 public:
  EchoServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 8);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(c, buf, sizeof buf, 0)) > 0) ::send(c, buf, std::size_t(n), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~EchoServer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_;
  int port_;
  std::thread thread_;
};

// Sends `text` and returns the echo, or "" if none arrived within timeout_ms.
std::string echo(int fd, const std::string& text, int timeout_ms) {
  ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
  std::string got;
  const auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (got.size() < text.size()) {
    const int left = int(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count());
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) break;
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, std::size_t(n));
  }
  return got;
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

TEST(FaultProxy, AHealthyLinkForwardsBothWays) {
  EchoServer server;
  FaultProxy proxy("127.0.0.1", server.port(), 1);
  int fd = testing::connect_to(proxy.port());
  ASSERT_GE(fd, 0);
  const auto t = Clock::now();
  EXPECT_EQ(echo(fd, "hello", 2000), "hello");
  EXPECT_LT(ms_since(t), 100);
  ::close(fd);
}

TEST(FaultProxy, LatencyDelaysEachDirection) {
  EchoServer server;
  FaultProxy proxy("127.0.0.1", server.port(), 1);
  proxy.set_link(100'000, 0);
  int fd = testing::connect_to(proxy.port());
  const auto t = Clock::now();
  EXPECT_EQ(echo(fd, "ping", 3000), "ping");
  EXPECT_GE(ms_since(t), 200);  // 100 ms there, 100 ms back
  proxy.set_link(0, 0);
  const auto t2 = Clock::now();
  EXPECT_EQ(echo(fd, "pong", 3000), "pong");
  EXPECT_LT(ms_since(t2), 150);
  ::close(fd);
}

TEST(FaultProxy, APartitionHoldsEverythingUntilHealed) {
  EchoServer server;
  FaultProxy proxy("127.0.0.1", server.port(), 1);
  int fd = testing::connect_to(proxy.port());
  EXPECT_EQ(echo(fd, "a", 2000), "a");
  proxy.set_partitioned(true);
  EXPECT_EQ(echo(fd, "b", 300), "");  // the connection stays open; nothing crosses
  proxy.set_partitioned(false);
  char buf[16];
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 2000), 1);
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, std::size_t(n)), "b");  // held, then delivered
  ::close(fd);
}

TEST(FaultProxy, LossAddsRetransmissionTimeoutsGeometricallyAndIsSeeded) {
  EchoServer server;
  FaultProxy a("127.0.0.1", server.port(), 42), b("127.0.0.1", server.port(), 42);
  a.set_link(1000, 0);
  EXPECT_EQ(a.draw_delay_us(), 1000);
  a.set_link(1000, 0.5);
  b.set_link(1000, 0.5);
  double sum = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const TimeUs d = a.draw_delay_us();
    ASSERT_EQ(d, b.draw_delay_us()) << "same seed, same draws";
    ASSERT_EQ((d - 1000) % kRetransmitTimeoutUs, 0);
    sum += double(d - 1000);
  }
  // E[k] = p / (1 - p) = 1 retransmission of 200 ms on average.
  EXPECT_NEAR(sum / n, 200'000, 20'000);
}

TEST(FaultProxy, ATargetThatIsDownClosesTheClientsConnection) {
  int port;
  {
    EchoServer gone;
    port = gone.port();
  }
  FaultProxy proxy("127.0.0.1", port, 1);
  int fd = testing::connect_to(proxy.port());
  ASSERT_GE(fd, 0);
  EXPECT_EQ(echo(fd, "x", 1000), "");
  ::close(fd);
  proxy.stop();
  proxy.stop();  // idempotent
}

}  // namespace
}  // namespace twinfer::runtime
