#include "core/params.h"

#include <cmath>
#include <cstdio>

namespace twinfer {

JsonParams::JsonParams(const nlohmann::json& object, std::string where, std::vector<std::string> ignored)
    : object_(object), where_(std::move(where)), known_(ignored.begin(), ignored.end()) {
  if (!object_.is_object()) throw Error(where_ + ": expected an object, got " + object_.dump());
}

void JsonParams::done() const {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (known_.count(it.key())) continue;
    std::string valid;
    for (const auto& k : known_) {
      if (k == "name") continue;
      valid += (valid.empty() ? "" : ", ") + k;
    }
    throw Error(where_ + ": unknown key '" + it.key() + "'; valid keys: " + (valid.empty() ? "(none)" : valid));
  }
}

void JsonParams::require(bool ok, const std::string& key, const std::string& message) const {
  if (!ok) throw Error(where_ + "." + key + ": " + message);
}

std::string JsonParams::integer_error(const nlohmann::json& v, double lo, double hi) {
  if (!v.is_number()) return "expected an integer, got " + v.dump();
  const double d = v.get<double>();
  if (v.is_number_float() && (!std::isfinite(d) || d != std::floor(d))) return "expected an integer, got " + v.dump();
  // Exact for the integers a config holds; a huge one is out of range either way.
  if (v.is_number_unsigned() ? double(v.get<std::uint64_t>()) > hi : (d < lo || d > hi)) {
    return "expected an integer in [" + format_number(lo) + ", " + format_number(hi) + "], got " + v.dump();
  }
  return {};
}

std::string format_number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", x);
  return buf;
}

}  // namespace twinfer
