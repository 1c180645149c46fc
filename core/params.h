// Policy parameters from JSON, with unknown keys rejected by name (STYLE.md rule 5).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace twinfer {

// Reads the keys of one JSON object into an options struct:
//
//   JsonParams p(spec, "policies.router");
//   p.get("max_batch_size", opts.max_batch_size);   // left at its default when absent
//   p.done();                                       // throws on any key not read
//
// Every error names `where`, the key, and (for unknown keys) the valid ones.
class JsonParams {
 public:
  // `ignored` keys are accepted without being read (e.g. "name" of a policy spec).
  JsonParams(const nlohmann::json& object, std::string where, std::vector<std::string> ignored = {"name"});

  template <class T>
  void get(const std::string& key, T& value) {
    known_.insert(key);
    auto it = object_.find(key);
    if (it == object_.end()) return;
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // Checked before narrowing: 2^32 + 2 is not 2, and 1e12 is no count of GPUs.
      const std::string why = integer_error(*it, double(std::numeric_limits<T>::min()),
                                            double(std::numeric_limits<T>::max()));
      if (!why.empty()) throw Error(where_ + "." + key + ": " + why);
      if (it->is_number_unsigned()) {
        value = static_cast<T>(it->template get<std::uint64_t>());
      } else if (it->is_number_integer()) {
        value = static_cast<T>(it->template get<std::int64_t>());
      } else {
        value = static_cast<T>(it->template get<double>());  // integral and in range: checked above
      }
      return;
    }
    try {
      value = it->template get<T>();
    } catch (const nlohmann::json::exception&) {
      throw Error(where_ + "." + key + ": expected " + type_name(value) + ", got " + it->dump());
    }
  }
  bool has(const std::string& key) const { return object_.contains(key); }
  // Throws twinfer::Error naming unknown keys and listing the valid ones.
  void done() const;
  // For range checks: throws twinfer::Error "<where>.<key>: <message>" unless ok.
  void require(bool ok, const std::string& key, const std::string& message) const;
  const std::string& where() const { return where_; }
  // The whole object, for policies that read their parameters themselves (Python policies).
  const nlohmann::json& object() const { return object_; }

 private:
  // Why `v` is not an integer within [lo, hi] ("expected an integer, got 2.5", "... out of range"),
  // or "".
  static std::string integer_error(const nlohmann::json& v, double lo, double hi);

  template <class T>
  static const char* type_name(const T&) {
    if constexpr (std::is_same_v<T, bool>) return "a boolean";
    else if constexpr (std::is_integral_v<T>) return "an integer";
    else if constexpr (std::is_floating_point_v<T>) return "a number";
    else if constexpr (std::is_same_v<T, std::string>) return "a string";
    else return "a value of another type";
  }

  const nlohmann::json& object_;
  std::string where_;
  std::set<std::string> known_;
};

// A number as every message shows it (config errors, reasons, reports): up to 10 significant digits,
// no trailing zeros (2.5, 0.1, 1000.001, 1e+12).
std::string format_number(double x);

}  // namespace twinfer
