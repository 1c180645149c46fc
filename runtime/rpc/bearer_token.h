// The shared bearer token's check, for the gRPC services and the HTTP server alike.
#pragma once

#include <string>
#include <string_view>

namespace twinfer::runtime {

// Whether an "authorization" header value carries `token` ("Bearer <token>"); compares in time
// independent of where the values differ. Always true when token is empty.
inline bool bearer_matches(std::string_view header, const std::string& token) {
  if (token.empty()) return true;
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() != kScheme.size() + token.size() || header.substr(0, kScheme.size()) != kScheme) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < token.size(); ++i) {
    diff |= static_cast<unsigned char>(header[kScheme.size() + i] ^ token[i]);
  }
  return diff == 0;
}

}  // namespace twinfer::runtime
