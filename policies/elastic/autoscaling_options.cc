#include "policies/elastic/autoscaling_options.h"

#include <cmath>

#include "core/model_dimensions.h"
#include "core/params.h"

namespace twinfer {

AutoscalingOptions parse_autoscaling(const nlohmann::json& j, const std::string& where) {
  AutoscalingOptions o;
  if (j.is_null()) return o;
  if (!j.is_object()) throw Error(where + ": expected an object, got " + j.dump());
  JsonParams p(j, where, {"autoscaler", "cold_start"});
  if (!j.contains("autoscaler")) throw Error(where + ".autoscaler: required (a policy name or {\"name\": ...})");
  o.autoscaler = j["autoscaler"];
  if (!o.autoscaler.is_string() && !o.autoscaler.is_object()) {
    throw Error(where + ".autoscaler: expected a policy name or an object with \"name\", got " + o.autoscaler.dump());
  }
  double interval_s = double(o.interval_us) / 1e6;
  p.get("interval_s", interval_s);
  p.require(interval_s > 0 && interval_s <= 86400, "interval_s", "must be in (0, 86400], got " + std::to_string(interval_s));
  o.interval_us = static_cast<TimeUs>(std::llround(interval_s * 1e6));
  p.get("min_replicas", o.min_replicas);
  p.get("max_replicas", o.max_replicas);
  p.get("initial_replicas", o.initial_replicas);
  p.require(o.min_replicas >= 1, "min_replicas", "must be at least 1, got " + std::to_string(o.min_replicas));
  p.require(o.max_replicas == 0 || o.max_replicas >= o.min_replicas, "max_replicas",
            "must be 0 (every instance) or at least min_replicas, got " + std::to_string(o.max_replicas));
  p.require(o.initial_replicas >= 0, "initial_replicas", "must be >= 0, got " + std::to_string(o.initial_replicas));
  p.done();
  if (j.contains("cold_start")) {
    JsonParams c(j["cold_start"], where + ".cold_start", {});
    c.get("startup_s", o.cold_start.startup_s);
    c.get("load_gbps", o.cold_start.load_gbps);
    c.require(o.cold_start.startup_s >= 0, "startup_s", "must be >= 0");
    c.require(o.cold_start.load_gbps > 0, "load_gbps", "must be positive");
    c.done();
  }
  return o;
}

TimeUs cold_start_us(const ColdStartOptions& options, const InstanceSpec& instance) {
  double bytes_per_gpu = model_weights_bytes(instance.model) / double(instance.tp());
  double seconds = options.startup_s + bytes_per_gpu / (options.load_gbps * 1e9);
  return static_cast<TimeUs>(std::llround(seconds * 1e6));
}

}  // namespace twinfer
