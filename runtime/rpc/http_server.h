// A minimal HTTP/1.1 server on POSIX sockets, one thread, one connection at a time, for /metrics
// and /healthz: GET and HEAD only, no keep-alive (every response closes its connection).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace twinfer::runtime {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Thread safety: the handler runs in the server's thread; port() and stop() from any thread.
class HttpServer {
 public:
  // Answers a GET of `path` (without the query string).
  using Handler = std::function<HttpResponse(const std::string& path)>;

  // Listens on host:port (port 0: a free one) and serves until stop(). Throws twinfer::Error when
  // it cannot listen there.
  HttpServer(const std::string& host, int port, Handler handler);
  ~HttpServer();  // stop()

  int port() const { return port_; }
  void stop();

 private:
  void loop();
  void serve(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace twinfer::runtime
