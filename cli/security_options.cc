#include "cli/security_options.h"

namespace twinfer::cli {

runtime::TransportSecurity security_options(const Args& args) {
  runtime::TransportSecurity s;
  s.cert_file = args.get("tls-cert");
  s.key_file = args.get("tls-key");
  s.ca_file = args.get("tls-ca");
  s.token_file = args.get("token-file");
  if (!s.token_file.empty()) s.token = runtime::read_token_file(s.token_file);
  runtime::check_security(s);
  return s;
}

}  // namespace twinfer::cli
