// The transport security options of the serving commands (serve, worker, replay).
#pragma once

#include <string>

#include "cli/args.h"
#include "runtime/rpc/transport_security.h"

namespace twinfer::cli {

// Their usage lines.
inline constexpr const char* kSecurityUsage =
    "  --tls-cert F --tls-key F  serve TLS (gRPC, and HTTPS for /metrics) with this PEM certificate\n"
    "                          chain and key\n"
    "  --tls-ca F              speak TLS to the servers this process calls, verifying their\n"
    "                          certificates against this PEM CA\n"
    "  --token-file F          a shared bearer token (the file's text): every call carries it, and\n"
    "                          every server refuses calls without it (/healthz stays open)\n";

// Reads --tls-cert, --tls-key, --tls-ca and --token-file; checks the files (twinfer::Error naming
// the option and file).
runtime::TransportSecurity security_options(const Args& args);

}  // namespace twinfer::cli
