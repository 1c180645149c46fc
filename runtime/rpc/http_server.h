// The HTTP/1.1 server of the serving processes (/metrics, /healthz), on Boost.Beast: asynchronous,
// so that many connections are served at once by a few threads, and each request has a deadline
// for the whole of it (a client that trickles its header, or reads its answer slowly, is cut off
// when the deadline passes instead of holding a thread). Keep-alive connections wait for their
// next request under the same deadline. GET and HEAD only. Optionally HTTPS (certificate and key
// from PEM files) and a bearer token that every path but the open ones requires (401 without it).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace twinfer::runtime {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct HttpServerOptions {
  int threads = 2;                  // serving the connections
  int request_deadline_ms = 5000;   // to read one whole request (or wait for it on a kept-alive
                                    // connection), and again to write its response
  int max_connections = 512;        // open at once; more are closed as soon as they are accepted
  std::size_t max_header_bytes = 16 * 1024;  // a larger request header is answered 431
  std::string tls_cert_file;        // PEM certificate chain; with tls_key_file: HTTPS only
  std::string tls_key_file;
  std::string token;                // "Authorization: Bearer <token>" required; empty: none
  std::vector<std::string> open_paths = {"/healthz"};  // served without the token (probes)
};

// Thread safety: the handler runs in the server's threads, possibly several at once; port() and
// stop() from any thread.
class HttpServer {
 public:
  // Answers a GET of `path` (without the query string).
  using Handler = std::function<HttpResponse(const std::string& path)>;

  // Listens on host:port (port 0: a free one) and serves until stop(). Throws twinfer::Error when
  // it cannot listen there, or read the TLS files.
  HttpServer(const std::string& host, int port, Handler handler, HttpServerOptions options = {});
  ~HttpServer();  // stop()

  int port() const;
  // Closes the listener and every connection, and joins the threads. Idempotent.
  void stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace twinfer::runtime
