#include "runtime/rpc/transport_security.h"

#include <sys/stat.h>

#include <fstream>
#include <iterator>

#include "core/error.h"

namespace twinfer::runtime {
namespace {

constexpr std::size_t kMaxTokenBytes = 4096;
constexpr std::size_t kMaxPemBytes = 1 << 20;
constexpr const char* kUnauthenticated = "missing or wrong bearer token";

// The whole of a small regular file; throws twinfer::Error naming it (and `what` it is for).
std::string read_small_file(const std::string& path, std::size_t max_bytes, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw Error(what + " " + path + ": cannot read it");
  if (!S_ISREG(st.st_mode)) throw Error(what + " " + path + ": not a regular file");
  if (std::size_t(st.st_size) > max_bytes) {
    throw Error(what + " " + path + ": " + std::to_string(st.st_size) + " bytes, more than the " +
                std::to_string(max_bytes) + " allowed");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(what + " " + path + ": cannot read it");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

std::string read_token_file(const std::string& path) {
  std::string text = read_small_file(path, kMaxTokenBytes, "--token-file");
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) throw Error("--token-file " + path + ": the token is empty");
  text = text.substr(first, text.find_last_not_of(" \t\r\n") - first + 1);
  for (unsigned char c : text) {
    if (c < 0x21 || c > 0x7e) {
      throw Error("--token-file " + path + ": the token must be printable ASCII without spaces (it travels in a header)");
    }
  }
  return text;
}

void check_security(const TransportSecurity& s) {
  if (s.cert_file.empty() != s.key_file.empty()) {
    throw Error(s.cert_file.empty() ? "--tls-key needs --tls-cert" : "--tls-cert needs --tls-key");
  }
  if (!s.cert_file.empty()) read_small_file(s.cert_file, kMaxPemBytes, "--tls-cert");
  if (!s.key_file.empty()) read_small_file(s.key_file, kMaxPemBytes, "--tls-key");
  if (!s.ca_file.empty()) read_small_file(s.ca_file, kMaxPemBytes, "--tls-ca");
}

std::shared_ptr<grpc::ServerCredentials> server_credentials(const TransportSecurity& s) {
  if (!s.tls_server()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options;
  options.pem_key_cert_pairs.push_back({read_small_file(s.key_file, kMaxPemBytes, "--tls-key"),
                                        read_small_file(s.cert_file, kMaxPemBytes, "--tls-cert")});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const TransportSecurity& s) {
  if (!s.tls_client()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = read_small_file(s.ca_file, kMaxPemBytes, "--tls-ca");
  return grpc::SslCredentials(options);
}

void authorize(grpc::ClientContext& context, const TransportSecurity& s) {
  if (!s.token.empty()) context.AddMetadata("authorization", "Bearer " + s.token);
}

grpc::Status check_token(const grpc::CallbackServerContext& context, const std::string& token) {
  if (token.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end() && bearer_matches(std::string_view(it->second.data(), it->second.size()), token)) {
    return grpc::Status::OK;
  }
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kUnauthenticated);
}

grpc::ServerUnaryReactor* refuse_unauthenticated(grpc::CallbackServerContext* context, const std::string& token) {
  grpc::Status status = check_token(*context, token);
  if (status.ok()) return nullptr;
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

bool is_loopback_address(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.rfind("ipv4:", 0) == 0) host = host.substr(5);
  if (host.rfind("ipv6:", 0) == 0) host = host.substr(5);
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

std::string exposure_warning(const std::string& address, const std::string& what, const TransportSecurity& security) {
  if (is_loopback_address(address)) return "";
  const bool tls = security.tls_server();
  const bool token = !security.token.empty();
  if (tls && token) return "";
  std::string lacks = !tls && !token ? "no TLS and no token: anyone who reaches it can call it and read its traffic"
                      : !tls          ? "no TLS: its token and traffic cross the network in the clear"
                                      : "no token: anyone who reaches it can call it";
  return "warning: " + what + " listens on " + address + ", beyond this host, with " + lacks +
         " (--tls-cert/--tls-key, --token-file; README: Security)";
}

}  // namespace twinfer::runtime
