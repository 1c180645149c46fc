// What the file-based cost models (profile, calibrated) share: a versioned table of entries, one
// per (device profile, model, tensor parallelism).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cluster_config.h"
#include "core/params.h"

namespace twinfer {

struct CostTableKey {
  std::string device;
  std::string model;
  int tp = 1;
  bool matches(const InstanceSpec& instance) const {
    return device == instance.device.name && model == instance.model.name && tp == instance.tp();
  }
  bool operator==(const CostTableKey& o) const { return device == o.device && model == o.model && tp == o.tp; }
  std::string name() const;  // "device 'D', model 'M', tp N"
  static CostTableKey of(const InstanceSpec& instance);
};

// The table's entries after checking its "format" (must be `format`) and its keys (besides
// "format" and "entries", only "meta"). Throws twinfer::Error prefixed with `source`.
const nlohmann::json& cost_table_entries(const nlohmann::json& table, const std::string& source, const char* format);

// Reads an entry's "device" and "model" (required) and "tp" (default 1, positive) through `p`,
// whose caller reads the rest and calls done().
CostTableKey read_cost_table_key(JsonParams& p);

// Throws "<where>: a second entry for <key>" when `key` is among `seen`, else adds it.
void add_unique_key(std::vector<CostTableKey>& seen, const CostTableKey& key, const std::string& where);

// The error of a table (`model_name` cost model, file `source`) without an entry for `instance`.
[[noreturn]] void throw_missing_entry(const std::string& model_name, const std::string& source,
                                      const InstanceSpec& instance, const std::vector<CostTableKey>& keys);

}  // namespace twinfer
