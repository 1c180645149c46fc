#include "runtime/rpc/fault_proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <vector>

#include "core/error.h"
#include "runtime/rpc/wire.h"

namespace twinfer::runtime {
namespace {

int connect_to(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd >= 0) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

bool write_all(int fd, const char* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= std::size_t(w);
  }
  return true;
}

}  // namespace

// One direction of a connection: chunks read from `from`, waiting to be written to `to`.
struct FaultProxy::Pipe {
  int from = -1;
  int to = -1;
  struct Chunk {
    TimeUs deliver_at_us = 0;
    std::string bytes;  // empty: the sender closed its side
  };
  std::deque<Chunk> chunks;   // guarded by FaultProxy::mu_
  TimeUs last_deliver_us = 0; // guarded by FaultProxy::mu_; keeps chunks in order
};

struct FaultProxy::Connection {
  Pipe up;    // client -> target
  Pipe down;  // target -> client
  int client = -1;
  int target = -1;
  int sides_done = 0;  // guarded by FaultProxy::mu_; the reader and writer of both pipes
  ~Connection() {
    if (client >= 0) ::close(client);
    if (target >= 0) ::close(target);
  }
};

FaultProxy::FaultProxy(std::string target_host, int target_port, std::uint64_t seed, int listen_port)
    : target_host_(std::move(target_host)), target_port_(target_port), rng_(seed) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(listen_port));
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0 || ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    throw Error("fault proxy: cannot listen on 127.0.0.1:" + std::to_string(listen_port) + ": " + why);
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

FaultProxy::~FaultProxy() { stop(); }

void FaultProxy::set_link(TimeUs latency_us, double loss) {
  assert(latency_us >= 0 && loss >= 0 && loss < 1);
  std::lock_guard<std::mutex> lock(mu_);
  latency_us_ = latency_us;
  loss_ = loss;
}

void FaultProxy::set_partitioned(bool partitioned) {
  std::lock_guard<std::mutex> lock(mu_);
  partitioned_ = partitioned;
  cv_.notify_all();
}

TimeUs FaultProxy::draw_delay_us() {
  std::lock_guard<std::mutex> lock(mu_);
  return link_delay_us(latency_us_, loss_, rng_);
}

void FaultProxy::stop() {
  std::list<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty() && !acceptor_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
    // shutdown() wakes the threads blocked in accept() and recv().
    if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
    for (auto& c : connections_) {
      ::shutdown(c->client, SHUT_RDWR);
      ::shutdown(c->target, SHUT_RDWR);
    }
  }
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  connections_.clear();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void FaultProxy::accept_loop() {
  for (;;) {
    const int client = ::accept(listen_fd_, nullptr, nullptr);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // stop() shut the socket down
    }
    int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const int target = connect_to(target_host_, target_port_);
    if (target < 0) {
      // The worker is down: refuse as it would (the client sees a reset connection).
      ::close(client);
      continue;
    }
    auto c = std::make_shared<Connection>();
    c->client = client;
    c->target = target;
    c->up.from = client;
    c->up.to = target;
    c->down.from = target;
    c->down.to = client;
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;  // c closes both
    connections_.push_back(c);
    threads_.emplace_back([this, c] { read_side(c, c->up); });
    threads_.emplace_back([this, c] { write_side(c, c->up); });
    threads_.emplace_back([this, c] { read_side(c, c->down); });
    threads_.emplace_back([this, c] { write_side(c, c->down); });
  }
}

void FaultProxy::read_side(std::shared_ptr<Connection> c, Pipe& pipe) {
  std::vector<char> buf(64 * 1024);
  for (;;) {
    const ssize_t n = ::recv(pipe.from, buf.data(), buf.size(), 0);
    if (n < 0 && errno == EINTR) continue;
    const TimeUs delay = n > 0 ? draw_delay_us() : 0;
    std::lock_guard<std::mutex> lock(mu_);
    Pipe::Chunk chunk;
    chunk.deliver_at_us = std::max(monotonic_now_us() + delay, pipe.last_deliver_us);
    pipe.last_deliver_us = chunk.deliver_at_us;
    if (n > 0) chunk.bytes.assign(buf.data(), std::size_t(n));
    pipe.chunks.push_back(std::move(chunk));
    cv_.notify_all();
    if (n <= 0) return;
  }
}

void FaultProxy::write_side(std::shared_ptr<Connection> c, Pipe& pipe) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (stopping_) break;
    if (pipe.chunks.empty() || partitioned_) {
      cv_.wait(lock);
      continue;
    }
    const TimeUs wait_us = pipe.chunks.front().deliver_at_us - monotonic_now_us();
    if (wait_us > 0) {
      cv_.wait_for(lock, std::chrono::microseconds(wait_us));
      continue;
    }
    Pipe::Chunk chunk = std::move(pipe.chunks.front());
    pipe.chunks.pop_front();
    lock.unlock();
    const bool closed = chunk.bytes.empty() || !write_all(pipe.to, chunk.bytes.data(), chunk.bytes.size());
    lock.lock();
    if (closed) break;
  }
  // The other side learns that this direction ended; the reader of the opposite pipe ends too
  // once its peer closes.
  ::shutdown(pipe.to, SHUT_WR);
  ::shutdown(pipe.from, SHUT_RD);
  if (++c->sides_done == 2) connections_.remove(c);
}

}  // namespace twinfer::runtime
