#include "policies/cost/cost_table.h"

#include <algorithm>

#include "core/error.h"

namespace twinfer {

std::string CostTableKey::name() const {
  return "device '" + device + "', model '" + model + "', tp " + std::to_string(tp);
}

CostTableKey CostTableKey::of(const InstanceSpec& instance) {
  return CostTableKey{instance.device.name, instance.model.name, instance.tp()};
}

const nlohmann::json& cost_table_entries(const nlohmann::json& table, const std::string& source, const char* format) {
  JsonParams p(table, source, {"meta", "entries"});
  std::string given;
  p.require(p.has("format"), "format", std::string("required: \"") + format + "\"");
  p.get("format", given);
  p.done();
  p.require(given == format, "format", std::string("expected \"") + format + "\", got \"" + given + "\"");
  p.require(p.has("entries") && table.at("entries").is_array(), "entries", "required: an array of entries");
  return table.at("entries");
}

CostTableKey read_cost_table_key(JsonParams& p) {
  CostTableKey k;
  p.require(p.has("device"), "device", "required");
  p.require(p.has("model"), "model", "required");
  p.get("device", k.device);
  p.get("model", k.model);
  p.get("tp", k.tp);
  p.require(k.tp > 0, "tp", "must be positive");
  return k;
}

void add_unique_key(std::vector<CostTableKey>& seen, const CostTableKey& key, const std::string& where) {
  if (std::find(seen.begin(), seen.end(), key) != seen.end()) throw Error(where + ": a second entry for " + key.name());
  seen.push_back(key);
}

void throw_missing_entry(const std::string& model_name, const std::string& source, const InstanceSpec& instance,
                         const std::vector<CostTableKey>& keys) {
  std::string known;
  for (const CostTableKey& k : keys) known += (known.empty() ? "" : "; ") + k.name();
  throw Error(model_name + " cost model: " + source + " has no entry for " + CostTableKey::of(instance).name() +
              " (instance '" + instance.name + "'); entries: " + (known.empty() ? "(none)" : known));
}

}  // namespace twinfer
