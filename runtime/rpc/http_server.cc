#include "runtime/rpc/http_server.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/error.h"
#include "runtime/rpc/bearer_token.h"

namespace twinfer::runtime {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

// Requests carry no body here; a few bytes are tolerated (some clients send an empty one).
constexpr std::uint64_t kMaxBodyBytes = 1024;

}  // namespace

class HttpServer::Impl {
 public:
  Impl(const std::string& host, int port, Handler handler, HttpServerOptions options)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        tls_(ssl::context::tls_server),
        ioc_(std::max(1, options_.threads)),
        acceptor_(net::make_strand(ioc_)) {
    if (options_.tls_cert_file.empty() != options_.tls_key_file.empty()) {
      throw Error("metrics server: HTTPS needs both a certificate and a key");
    }
    if (!options_.tls_cert_file.empty()) {
      beast::error_code ec;
      tls_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      tls_.use_certificate_chain_file(options_.tls_cert_file, ec);
      if (ec) throw Error("--tls-cert " + options_.tls_cert_file + ": " + ec.message());
      tls_.use_private_key_file(options_.tls_key_file, ssl::context::pem, ec);
      if (ec) throw Error("--tls-key " + options_.tls_key_file + ": " + ec.message());
    }
    const std::string where = host + ":" + std::to_string(port);
    beast::error_code ec;
    tcp::resolver resolver(ioc_);
    auto found = resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service,
                                  ec);
    if (ec) throw Error("metrics server: cannot resolve " + where + ": " + ec.message());
    std::string error = "no address";
    for (const auto& entry : found) {
      beast::error_code e;
      tcp::acceptor a(acceptor_.get_executor());
      a.open(entry.endpoint().protocol(), e);
      if (!e) a.set_option(net::socket_base::reuse_address(true), e);
      if (!e) a.bind(entry.endpoint(), e);
      if (!e) a.listen(net::socket_base::max_listen_connections, e);
      if (e) {
        error = e.message();
        continue;
      }
      acceptor_ = std::move(a);
      break;
    }
    if (!acceptor_.is_open()) throw Error("metrics server: cannot listen on " + where + ": " + error);
    port_ = acceptor_.local_endpoint().port();
    accept();
    for (int i = 0; i < std::max(1, options_.threads); ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  ~Impl() { stop(); }

  int port() const { return port_; }

  void stop() {
    if (stopped_.exchange(true)) return;
    ioc_.stop();  // every pending operation is abandoned; the connections close with ioc_
    for (auto& t : threads_) t.join();
    threads_.clear();
    beast::error_code ignored;
    acceptor_.close(ignored);  // no thread runs now
  }

 private:
  // One connection (plain or TLS): read a request under the deadline, answer it, and again while
  // it keeps alive.
  template <class Stream>
  class Session : public std::enable_shared_from_this<Session<Stream>> {
   public:
    template <class... Args>
    Session(Impl* server, Args&&... args) : server_(server), stream_(std::forward<Args>(args)...) {
      ++server_->open_;
    }
    ~Session() { --server_->open_; }

    void start() {
      if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        read();
      } else {
        deadline();
        stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
          if (!ec) self->read();  // a failed handshake closes the connection with the session
        });
      }
    }

   private:
    const HttpServerOptions& options() const { return server_->options_; }
    void deadline() {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::milliseconds(options().request_deadline_ms));
    }

    void read() {
      parser_.emplace();
      parser_->header_limit(static_cast<std::uint32_t>(options().max_header_bytes));
      parser_->body_limit(kMaxBodyBytes);
      deadline();
      http::async_read(stream_, buffer_, *parser_,
                       [self = this->shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::operation_aborted ||
          ec == net::error::connection_reset || ec == net::error::eof || ec == ssl::error::stream_truncated) {
        return close();
      }
      keep_alive_ = false;
      if (ec == http::error::header_limit) {
        return answer({431, "text/plain; charset=utf-8", "request header too large\n"}, false);
      }
      if (ec == http::error::body_limit) return answer({413, "text/plain; charset=utf-8", "body too large\n"}, false);
      if (ec) return answer({400, "text/plain; charset=utf-8", "bad request\n"}, false);
      const auto& request = parser_->get();
      keep_alive_ = request.keep_alive();
      const bool head = request.method() == http::verb::head;
      if (!head && request.method() != http::verb::get) {
        keep_alive_ = false;
        return answer({405, "text/plain; charset=utf-8", "only GET and HEAD\n"}, false);
      }
      const std::string target(request.target());
      const std::string path = target.substr(0, target.find('?'));
      const auto& open = options().open_paths;
      const auto authorization = request[http::field::authorization];
      if (std::find(open.begin(), open.end(), path) == open.end() &&
          !bearer_matches(std::string_view(authorization.data(), authorization.size()), options().token)) {
        return answer({401, "text/plain; charset=utf-8", "missing or wrong bearer token\n"}, head, true);
      }
      HttpResponse response;
      try {
        response = server_->handler_(path);
      } catch (const std::exception& e) {
        response = {500, "text/plain; charset=utf-8", std::string("error: ") + e.what() + "\n"};
      }
      answer(std::move(response), head);
    }

    void answer(HttpResponse r, bool head, bool challenge = false) {
      response_ = {};
      response_.version(11);
      response_.result(static_cast<unsigned>(r.status));
      response_.set(http::field::content_type, r.content_type);
      if (challenge) response_.set(http::field::www_authenticate, "Bearer");
      response_.content_length(r.body.size());
      response_.keep_alive(keep_alive_);
      if (!head) response_.body() = std::move(r.body);
      deadline();
      http::async_write(stream_, response_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec || !self->keep_alive_) return self->close();
        self->read();
      });
    }

    void close() {
      beast::error_code ignored;
      beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_send, ignored);
    }

    Impl* server_;
    Stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    http::response<http::string_body> response_;
    bool keep_alive_ = false;
  };

  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      // Past the limit the connection is closed at once (the socket goes out of scope).
      if (!ec && open_.load() < options_.max_connections) {
        if (!options_.tls_cert_file.empty()) {
          std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(this, std::move(socket), tls_)->start();
        } else {
          std::make_shared<Session<beast::tcp_stream>>(this, std::move(socket))->start();
        }
      }
      accept();
    });
  }

  HttpServerOptions options_;
  Handler handler_;
  ssl::context tls_;  // configured when options_ name a certificate (HTTPS)
  std::atomic<int> open_{0};  // connections: outlives the sessions that ioc_'s destruction frees
  std::atomic<bool> stopped_{false};
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::vector<std::thread> threads_;
};

HttpServer::HttpServer(const std::string& host, int port, Handler handler, HttpServerOptions options)
    : impl_(std::make_unique<Impl>(host, port, std::move(handler), std::move(options))) {}
HttpServer::~HttpServer() = default;
int HttpServer::port() const { return impl_->port(); }
void HttpServer::stop() { impl_->stop(); }

}  // namespace twinfer::runtime
