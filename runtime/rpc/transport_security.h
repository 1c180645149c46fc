// Who may call the serving processes, and over what: TLS from PEM files, and a shared bearer token,
// for client -> router, router -> worker and the router's /metrics. Off by default: then every
// port speaks plaintext to anyone who reaches it (see README, Security).
//
// A server with cert_file and key_file serves TLS (gRPC and HTTPS); a client with ca_file speaks
// TLS to its servers and verifies their certificates against that CA (the certificate must name
// the host the client dials: for loopback, IP:127.0.0.1 in its subjectAltName). With a token,
// every call carries "authorization: Bearer <token>" and every server refuses a call without it
// (gRPC UNAUTHENTICATED, HTTP 401); /healthz stays open for probes.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "runtime/rpc/bearer_token.h"

namespace twinfer::runtime {

struct TransportSecurity {
  std::string cert_file;   // PEM certificate chain of this process's servers
  std::string key_file;    // PEM private key of cert_file
  std::string ca_file;     // PEM CA that this process's clients verify their servers against
  std::string token_file;  // where token was read from (for messages and for spawned workers)
  std::string token;       // shared bearer token; empty: none

  bool tls_server() const { return !cert_file.empty(); }
  bool tls_client() const { return !ca_file.empty(); }
};

// Reads the bearer token of `path` (a regular file of at most 4 KiB; surrounding whitespace
// dropped). Throws twinfer::Error naming the file when it cannot, or when the token is empty or
// holds a character a header value cannot carry.
std::string read_token_file(const std::string& path);

// Checks what `s` names: cert_file and key_file together, each file readable. Throws twinfer::Error
// naming the option ("--tls-key") and the file.
void check_security(const TransportSecurity& s);

// gRPC credentials for a server (TLS when tls_server()) and for a client's channels (TLS when
// tls_client()). Throw twinfer::Error naming the file they cannot read.
std::shared_ptr<grpc::ServerCredentials> server_credentials(const TransportSecurity& s);
std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const TransportSecurity& s);

// Adds the bearer token to a call, when there is one.
void authorize(grpc::ClientContext& context, const TransportSecurity& s);

// A server's check of one call: OK, or UNAUTHENTICATED when a token is required and the call does
// not carry it.
grpc::Status check_token(const grpc::CallbackServerContext& context, const std::string& token);

// For a callback service's method: nullptr when the call may go on; else a reactor that finished
// it UNAUTHENTICATED, for the method to return.
grpc::ServerUnaryReactor* refuse_unauthenticated(grpc::CallbackServerContext* context, const std::string& token);

// Whether HOST:PORT's host is this machine only: localhost, 127.0.0.0/8 or [::1].
bool is_loopback_address(const std::string& address);
// Printed (to stderr) by a server that listens on `address`: empty on loopback or with both TLS
// and a token; else a warning naming `what` and what it lacks.
std::string exposure_warning(const std::string& address, const std::string& what, const TransportSecurity& security);

}  // namespace twinfer::runtime
