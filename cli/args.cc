#include "cli/args.h"

#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "core/params.h"

namespace twinfer::cli {

Args::Args(int argc, char** argv, const std::set<std::string>& options, const std::set<std::string>& flags,
           const std::set<std::string>& repeated) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) throw Error("unexpected argument '" + a + "' (options start with --)");
    std::string name = a.substr(2);
    std::string value;
    bool inline_value = false;
    if (auto eq = name.find('='); eq != std::string::npos && !options.count(name)) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      inline_value = true;
    }
    if (flags.count(name)) {
      flags_.insert(name);
      continue;
    }
    if (!options.count(name) && !repeated.count(name)) {
      std::string valid;
      for (const auto* set : {&options, &repeated, &flags}) {
        for (const auto& o : *set) valid += " --" + o;
      }
      throw Error("unknown option '" + a + "'; valid:" + valid);
    }
    if (!inline_value) {
      if (i + 1 >= argc) throw Error("option --" + name + " needs a value");
      value = argv[++i];
    }
    auto& slot = values_[name];
    if (!slot.empty() && !repeated.count(name)) throw Error("option --" + name + " given twice");
    slot.push_back(value);
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second.back();
}

std::string Args::required(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw Error("--" + name + " is required");
  return it->second.back();
}

double Args::number(const std::string& name, double fallback) const {
  auto it = values_.find(name);
  if (it == values_.end()) return fallback;
  const std::string& s = it->second.back();
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') throw Error("--" + name + ": expected a number, got '" + s + "'");
  return v;
}

double Args::number(const std::string& name, double fallback, double min, double max) const {
  const double v = number(name, fallback);
  if (!(v >= min && v <= max)) {
    throw Error("--" + name + ": expected a number in [" + format_number(min) + ", " + format_number(max) + "], got '" +
                get(name) + "'");
  }
  return v;
}

long long Args::integer(const std::string& name, long long fallback, long long min, long long max) const {
  if (!has(name)) return fallback;
  const double v = number(name, double(fallback));
  if (!(v >= double(min) && v <= double(max)) || v != std::floor(v)) {
    throw Error("--" + name + ": expected an integer in [" + std::to_string(min) + ", " + std::to_string(max) +
                "], got '" + get(name) + "'");
  }
  return static_cast<long long>(v);
}

std::vector<std::string> Args::all(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

std::vector<std::string> Args::list(const std::string& name) const {
  std::vector<std::string> out;
  std::string cur;
  for (char c : get(name)) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace twinfer::cli
