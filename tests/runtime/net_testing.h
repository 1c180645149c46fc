// Helpers for tests that talk to servers over loopback.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/rpc/worker_supervisor.h"

namespace twinfer::testing {

// A port on 127.0.0.1 free now (the OS picks it; a tiny window remains before a server binds it).
inline int free_port() { return runtime::free_loopback_ports(1).front(); }

// A TCP connection to 127.0.0.1:port (the caller closes it); -1 when nothing accepts it.
inline int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// True when 127.0.0.1:port accepts a TCP connection now.
inline bool accepts(int port) {
  const int fd = connect_to(port);
  if (fd >= 0) ::close(fd);
  return fd >= 0;
}

// GET `path` from 127.0.0.1:port: the whole response, headers included; "" when nothing listens.
inline std::string http_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    ::send(fd, request.data(), request.size(), 0);
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) response.append(buf, std::size_t(n));
  }
  ::close(fd);
  return response;
}

}  // namespace twinfer::testing
