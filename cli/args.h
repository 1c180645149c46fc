// Command-line options of the twinfer subcommands: `--name value`, repeatable `--set k=v`, flags.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

namespace twinfer::cli {

class Args {
 public:
  // `flags` take no value; `repeated` may appear several times; every other option takes one value.
  // Throws twinfer::Error on an unknown option (listing the valid ones) or a missing value.
  Args(int argc, char** argv, const std::set<std::string>& options, const std::set<std::string>& flags = {},
       const std::set<std::string>& repeated = {});

  bool has(const std::string& name) const { return values_.count(name) > 0 || flags_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  // Throws twinfer::Error "--name is required".
  std::string required(const std::string& name) const;
  double number(const std::string& name, double fallback) const;
  // A number in [min, max] (NaN and infinities refused): twinfer::Error "--name: expected a number
  // in [min, max], got 'text'".
  double number(const std::string& name, double fallback, double min, double max) const;
  // A whole number in [min, max], checked before any narrowing: twinfer::Error "--name: expected
  // an integer in [min, max], got 'text'".
  long long integer(const std::string& name, long long fallback, long long min, long long max) const;
  std::vector<std::string> all(const std::string& name) const;
  // Splits a comma-separated value; empty when absent.
  std::vector<std::string> list(const std::string& name) const;

 private:
  std::map<std::string, std::vector<std::string>> values_;
  std::set<std::string> flags_;
};

}  // namespace twinfer::cli
