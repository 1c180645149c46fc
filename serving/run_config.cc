#include "serving/run_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "core/params.h"

namespace twinfer {
namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

// The array index `s` names, if it is one below `size` (digits only, no sign, no overflow).
bool parse_index(const std::string& s, std::size_t size, std::size_t& index) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  index = 0;
  for (char c : s) {
    index = index * 10 + static_cast<std::size_t>(c - '0');
    if (index >= size) return false;
  }
  return true;
}

// Keys and string values of an override enter the config as they are; like any JSON text they
// must be UTF-8, or the config could not be shown in messages (nlohmann::json::dump() throws on
// invalid UTF-8).
bool is_utf8(const std::string& text) {
  try {
    (void)nlohmann::json(text).dump();
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
  return true;
}

// A value that is not JSON is kept as a string.
nlohmann::json parse_value(const std::string& text) {
  auto v = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  return v.is_discarded() ? nlohmann::json(text) : v;
}

std::string dir_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

SloSpec parse_slo(const nlohmann::json& j, const std::string& where) {
  SloSpec slo;
  JsonParams p(j, where, {});
  p.get("ttft_ms", slo.ttft_ms);
  p.get("tpot_ms", slo.tpot_ms);
  p.get("latency_ms", slo.latency_ms);
  p.done();
  p.require(slo.ttft_ms >= 0 && slo.tpot_ms >= 0 && slo.latency_ms >= 0, "*", "bounds must be >= 0");
  return slo;
}

WorkloadOptions parse_workload(const nlohmann::json& j, const std::string& where) {
  WorkloadOptions w;
  JsonParams p(j, where, {"slo"});
  p.get("trace", w.trace);
  p.done();
  if (j.contains("slo")) w.slo = parse_slo(j["slo"], where + ".slo");
  return w;
}

SimOptions parse_sim(const nlohmann::json& j, const std::string& where) {
  SimOptions s;
  JsonParams p(j, where, {});
  p.get("network", s.network);
  p.get("request_bytes_per_token", s.request_bytes_per_token);
  p.get("response_bytes_per_token", s.response_bytes_per_token);
  p.get("message_overhead_bytes", s.message_overhead_bytes);
  p.get("timeline", s.timeline);
  p.get("step_log", s.step_log);
  p.get("dispatch_us", s.dispatch_us);
  p.get("fast_forward", s.fast_forward);
  p.done();
  p.require(s.network == "flow" || s.network == "latency" || s.network == "none", "network",
            "expected \"flow\", \"latency\" or \"none\", got \"" + s.network + "\"");
  p.require(s.request_bytes_per_token >= 0 && s.response_bytes_per_token >= 0 && s.message_overhead_bytes >= 0,
            "*bytes*", "byte sizes must be >= 0");
  p.require(std::isfinite(s.dispatch_us) && s.dispatch_us >= 0 && s.dispatch_us <= 1e9, "dispatch_us",
            "must be in [0, 1e9] microseconds");
  return s;
}

}  // namespace

void apply_override(nlohmann::json& config, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error("--set " + assignment + ": expected key=value (e.g. policies.router.name=least_work)");
  }
  std::string key = assignment.substr(0, eq);
  if (!is_utf8(key)) throw Error("--set: the key is not valid UTF-8");
  if (!is_utf8(assignment.substr(eq + 1))) throw Error("--set " + key + ": the value is not valid UTF-8");
  auto parts = split_path(key);
  nlohmann::json* node = &config;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part.empty()) throw Error("--set " + key + ": empty key segment");
    bool last = i + 1 == parts.size();
    if (node->is_array()) {
      std::size_t index = 0;
      if (!parse_index(part, node->size(), index)) {
        throw Error("--set " + key + ": '" + part + "' is not an index of an array of " +
                    std::to_string(node->size()));
      }
      node = &(*node)[index];
    } else {
      if (node->is_string()) *node = nlohmann::json{{"name", node->get<std::string>()}};
      if (node->is_null()) *node = nlohmann::json::object();
      if (!node->is_object()) throw Error("--set " + key + ": '" + part + "' is under a " + node->type_name());
      node = &(*node)[part];
    }
    if (last) *node = parse_value(assignment.substr(eq + 1));
  }
}

RunConfig parse_run_config(const nlohmann::json& config, const std::string& source) {
  const std::string where = source.empty() ? "config" : source;
  RunConfig rc;
  rc.source = source;
  rc.base_dir = source.empty() ? "." : dir_of(source);
  rc.raw = config;
  JsonParams top(config, where, {"cluster", "policies", "workload", "sim", "protection", "autoscaling"});
  top.done();
  if (!config.contains("cluster")) throw Error(where + ": missing key 'cluster'");
  rc.cluster = parse_cluster_config(config["cluster"], where);

  static const nlohmann::json kEmpty = nlohmann::json::object();
  const auto& pol = config.contains("policies") ? config["policies"] : kEmpty;
  JsonParams pp(pol, where + ": policies", {"admission", "router", "batcher", "cost_model", "traffic_split"});
  pp.done();
  rc.admission = pol.value("admission", nlohmann::json("accept_all"));
  rc.router = pol.value("router", nlohmann::json("round_robin"));
  rc.batcher = pol.value("batcher", nlohmann::json("continuous"));
  rc.cost_model = pol.value("cost_model", nlohmann::json("roofline"));
  rc.traffic_split = pol.value("traffic_split", nlohmann::json());
  rc.workload = parse_workload(config.value("workload", kEmpty), where + ": workload");
  rc.sim = parse_sim(config.value("sim", kEmpty), where + ": sim");
  rc.protection = parse_protection(config.value("protection", kEmpty), where + ": protection");
  rc.autoscaling = parse_autoscaling(config.value("autoscaling", nlohmann::json()), where + ": autoscaling");
  return rc;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  nlohmann::json config = read_json_file(path, "config file");
  for (const auto& o : overrides) apply_override(config, o);
  return parse_run_config(config, path);
}

}  // namespace twinfer
