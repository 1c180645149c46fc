#include "serving/faults/fault_scenario.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/json_file.h"
#include "core/params.h"

namespace twinfer {

namespace {

// Longest time a scenario may name: beyond it microsecond counts would overflow in arithmetic.
constexpr double kMaxSeconds = 1e9;

FaultType type_of(const nlohmann::json& f, const std::string& where) {
  auto it = f.find("type");
  if (it == f.end()) throw Error(where + ": missing key 'type'");
  if (!it->is_string()) throw Error(where + ".type: expected a string, got " + it->dump());
  const std::string t = it->get<std::string>();
  for (FaultType k : {FaultType::kCrash, FaultType::kSlowdown, FaultType::kLink, FaultType::kPartition,
                      FaultType::kRouterRestart, FaultType::kDeviceError}) {
    if (t == fault_type_name(k)) return k;
  }
  throw Error(where + ".type: unknown fault type '" + t +
              "'; valid: crash, slowdown, link, partition, router_restart, device_error");
}

int worker_of(const nlohmann::json& f, const std::string& where, const ClusterConfig& cluster) {
  auto it = f.find("worker");
  if (it == f.end()) throw Error(where + ": missing key 'worker'");
  const int n = static_cast<int>(cluster.instances.size());
  if (it->is_number_integer()) {
    auto i = it->get<std::int64_t>();
    if (i < 0 || i >= n) {
      throw Error(where + ".worker: no worker " + std::to_string(i) + "; the cluster has " + std::to_string(n) +
                  " (0.." + std::to_string(n - 1) + ")");
    }
    return static_cast<int>(i);
  }
  if (it->is_string()) {
    const std::string name = it->get<std::string>();
    for (const auto& inst : cluster.instances) {
      if (inst.name == name) return inst.index;
    }
    std::string valid;
    for (const auto& inst : cluster.instances) valid += (valid.empty() ? "" : ", ") + inst.name;
    throw Error(where + ".worker: no worker named '" + name + "'; valid: " + valid);
  }
  throw Error(where + ".worker: expected an index or an instance name, got " + it->dump());
}

// Reads an optional time in seconds (or milliseconds) into `out`; absent leaves it as is.
void get_time(JsonParams& p, const std::string& key, double scale_to_us, TimeUs& out) {
  double v = -1;
  if (!p.has(key)) return p.get(key, v);  // marks the key as known
  p.get(key, v);
  p.require(v >= 0 && v <= kMaxSeconds, key, "must be a time in [0, 1e9] s, got " + std::to_string(v));
  out = static_cast<TimeUs>(std::llround(v * scale_to_us));
}

Fault parse_one(const nlohmann::json& f, const std::string& where, const ClusterConfig& cluster) {
  if (!f.is_object()) throw Error(where + ": expected an object, got " + f.dump());
  Fault fault;
  fault.where = where;
  fault.type = type_of(f, where);
  JsonParams p(f, where, {"type", "worker"});
  if (!p.has("at_s")) throw Error(where + ": missing key 'at_s'");
  get_time(p, "at_s", 1e6, fault.at_us);
  if (fault.type == FaultType::kRouterRestart) {
    if (f.contains("worker")) throw Error(where + ".worker: a router restart names no worker");
    if (!p.has("downtime_s")) throw Error(where + ": missing key 'downtime_s'");
    get_time(p, "downtime_s", 1e6, fault.duration_us);
  } else {
    fault.worker = worker_of(f, where, cluster);
  }
  switch (fault.type) {
    case FaultType::kCrash:
      get_time(p, "recover_after_s", 1e6, fault.duration_us);
      break;
    case FaultType::kSlowdown:
      get_time(p, "duration_s", 1e6, fault.duration_us);
      if (!p.has("factor")) throw Error(where + ": missing key 'factor'");
      p.get("factor", fault.factor);
      p.require(fault.factor >= 1 && fault.factor <= 1e6, "factor", "must be in [1, 1e6]");
      break;
    case FaultType::kLink: {
      get_time(p, "duration_s", 1e6, fault.duration_us);
      if (!p.has("latency_ms") && !p.has("loss")) throw Error(where + ": a link fault needs 'latency_ms' or 'loss'");
      get_time(p, "latency_ms", 1e3, fault.latency_us);
      p.get("loss", fault.loss);
      p.require(fault.loss >= 0 && fault.loss < 1, "loss", "must be in [0, 1)");
      break;
    }
    case FaultType::kPartition:
    case FaultType::kDeviceError:
      get_time(p, "duration_s", 1e6, fault.duration_us);
      break;
    case FaultType::kRouterRestart:
      break;
  }
  if (fault.duration_us == 0) throw Error(where + ": a fault must last longer than 0 s");
  p.done();
  return fault;
}

// Sorted by type, worker and start, faults overlap only with their neighbour: n log n, not n^2.
void check_overlaps(const std::vector<Fault>& faults) {
  std::vector<const Fault*> order;
  order.reserve(faults.size());
  for (const Fault& f : faults) order.push_back(&f);
  std::stable_sort(order.begin(), order.end(), [](const Fault* a, const Fault* b) {
    if (a->type != b->type) return a->type < b->type;
    if (a->worker != b->worker) return a->worker < b->worker;
    return a->at_us < b->at_us;
  });
  for (std::size_t k = 1; k < order.size(); ++k) {
    const Fault& a = *order[k - 1];
    const Fault& b = *order[k];
    if (a.type != b.type || a.worker != b.worker || a.end_us() <= b.at_us) continue;
    // Name them in file order, the later one first.
    const Fault& first = &a < &b ? a : b;
    const Fault& second = &a < &b ? b : a;
    throw Error(second.where + ": overlaps " + first.where.substr(first.where.rfind(' ') + 1) + " (both " +
                fault_type_name(a.type) + (a.worker >= 0 ? " of worker " + std::to_string(a.worker) : "") + ")");
  }
}

}  // namespace

TimeUs link_delay_us(TimeUs latency_us, double loss, std::mt19937_64& rng) {
  TimeUs delay = latency_us;
  if (loss <= 0) return delay;  // no draw: a lossless link leaves the random sequence alone
  for (int k = 0; k < 30 && double(rng() >> 11) * 0x1.0p-53 < loss; ++k) delay += kRetransmitTimeoutUs;
  return delay;
}

const char* fault_type_name(FaultType type) {
  switch (type) {
    case FaultType::kCrash: return "crash";
    case FaultType::kSlowdown: return "slowdown";
    case FaultType::kLink: return "link";
    case FaultType::kPartition: return "partition";
    case FaultType::kRouterRestart: return "router_restart";
    case FaultType::kDeviceError: return "device_error";
  }
  return "unknown";
}

std::vector<FaultEvent> FaultScenario::events() const {
  std::vector<FaultEvent> out;
  for (const Fault& f : faults) {
    out.push_back({f.at_us, true, &f});
    if (f.end_us() != kNever) out.push_back({f.end_us(), false, &f});
  }
  std::stable_sort(out.begin(), out.end(), [](const FaultEvent& a, const FaultEvent& b) {
    if (a.at_us != b.at_us) return a.at_us < b.at_us;
    return !a.starts && b.starts;
  });
  return out;
}

FaultScenario parse_fault_scenario(const nlohmann::json& j, const std::string& source, const ClusterConfig& cluster) {
  const std::string file = source.empty() ? "faults" : source;
  if (!j.is_object()) throw Error(file + ": expected an object with a 'faults' array");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "faults") throw Error(file + ": unknown key '" + it.key() + "'; valid: faults");
  }
  auto list = j.find("faults");
  if (list == j.end() || !list->is_array()) throw Error(file + ": expected a 'faults' array");
  FaultScenario s;
  s.source = source;
  for (std::size_t i = 0; i < list->size(); ++i) {
    s.faults.push_back(parse_one((*list)[i], file + ": faults[" + std::to_string(i) + "]", cluster));
  }
  check_overlaps(s.faults);
  return s;
}

FaultScenario load_fault_scenario(const std::string& path, const ClusterConfig& cluster) {
  return parse_fault_scenario(read_json_file(path, "fault scenario"), path, cluster);
}

}  // namespace twinfer
