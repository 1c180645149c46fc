// Parser of the "cluster" object of a run config. The format (every key is documented in
// configs/README.md):
//
//   "cluster": {
//     "devices": {NAME: {peak_tflops, mem_bandwidth_gbps, mem_gb, compute_efficiency,
//                        bandwidth_efficiency, price_per_hour}},   optional; adds or overrides
//     "models":  {NAME: {params, layers, hidden, heads, kv_heads, ffn_hidden, vocab,
//                        bytes_per_param, kv_bytes_per_token, weights_bytes, version_of,
//                        max_context}},
//     "router":  {"nic": LINK},                                    optional
//     "hosts":   [{name, count, device, gpus, gpu_link: LINK, nic: LINK, host_link: LINK,
//                  memory_bandwidth_gbps, instances: [{model, tp, count, gpus: [i, ...]}]}]
//   }
//   LINK = {"bandwidth_gbps": 1e9 bytes/s, "latency_us": one-way microseconds}
//
// Defaults when a key is absent:
//   - devices: a new profile needs peak_tflops, mem_bandwidth_gbps and mem_gb; efficiencies default
//     to 0.7 / 0.8 and price to 0. An entry named like a built-in profile overrides only the keys
//     it gives.
//   - models: kv_heads = heads, ffn_hidden = 4 * hidden, vocab 32000, bytes_per_param 2,
//     kv_bytes_per_token = 2 * layers * kv_heads * (hidden / heads) * bytes_per_param,
//     weights_bytes = params * bytes_per_param. layers = 0 declares an opaque model sized by params.
//   - gpu_link: NVLink-class for datacenter GPUs, per direction: H100 and H200 (NVLink 4) 450 GB/s,
//     A100 (NVLink 3) 300 GB/s, 2 us; any other device PCIe Gen4 x16 class, 32 GB/s, 5 us.
//   - host nic and router nic: 25 GB/s (a 200 Gb/s NIC), 5 us.
//   - host_link (each GPU to host memory, per direction): H100 and H200 PCIe Gen5 x16, 64 GB/s,
//     5 us; CPU (host memory copies) 20 GB/s, 1 us; any other device PCIe Gen4 x16, 32 GB/s, 5 us.
//   - memory_bandwidth_gbps 0: host memory does not bound the host tier's copies (with
//     sim.network=flow a value > 0 is shared by the copies of all the host's GPUs at once; other
//     networks time each copy alone and refuse it).
//   - host count 1; instance tp 1, count 1.
//   - version_of "": the model is not a version of another.
//   - max_context 4096 (tokens of prompt + output; set it to what the real model supports, e.g.
//     8192 for Llama-3-8B).
//
// A host with count N > 1 expands to hosts "<name>0" .. "<name>N-1". Instances take the host's
// GPUs first fit: each takes the lowest `tp` consecutive free GPUs, or exactly its "gpus".
//
// Limits, far above any real cluster, so that a typo cannot make the parser run for hours or
// exhaust memory: 1024 GPUs a host, 65536 hosts and 65536 instances (workers) in all.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "core/cluster_config.h"
#include "core/error.h"
#include "core/model_dimensions.h"
#include "core/params.h"

namespace twinfer {
namespace {

constexpr int kMaxGpusPerHost = 1024;
constexpr std::size_t kMaxHosts = 65536;
constexpr std::size_t kMaxInstances = 65536;

using nlohmann::json;

constexpr LinkSpec kDefaultNic{25, 5};
constexpr LinkSpec kNvlink4{450, 2};
constexpr LinkSpec kNvlink3{300, 2};
constexpr LinkSpec kPcie4{32, 5};

constexpr LinkSpec kPcie5{64, 5};
constexpr LinkSpec kHostMemoryCopy{20, 1};

LinkSpec default_host_link(const std::string& device) {
  if (device == "H100" || device == "H200") return kPcie5;
  if (device == "CPU") return kHostMemoryCopy;
  return kPcie4;
}

LinkSpec default_gpu_link(const std::string& device) {
  if (device == "H100" || device == "H200") return kNvlink4;
  if (device == "A100") return kNvlink3;
  return kPcie4;
}

// Integer keys must be JSON integers: nlohmann would silently truncate 2.5 to 2.
void get_int(JsonParams& p, const json& object, const std::string& key, int& value) {
  auto it = object.find(key);
  if (it != object.end() && !it->is_number_integer()) {
    throw Error(p.where() + "." + key + ": expected an integer, got " + it->dump());
  }
  p.get(key, value);
}

void get_required(JsonParams& p, const std::string& key, double& value) {
  p.require(p.has(key), key, "required");
  p.get(key, value);
}

void require_positive(JsonParams& p, const std::string& key, double value) {
  p.require(value > 0, key, "must be positive, got " + format_number(value));
}

void require_fraction(JsonParams& p, const std::string& key, double value) {
  p.require(value > 0 && value <= 1, key, "must be in (0, 1], got " + format_number(value));
}

LinkSpec parse_link(const json& object, const std::string& where, LinkSpec link) {
  JsonParams p(object, where, {});
  p.get("bandwidth_gbps", link.bandwidth_gbps);
  p.get("latency_us", link.latency_us);
  p.done();
  require_positive(p, "bandwidth_gbps", link.bandwidth_gbps);
  p.require(link.latency_us >= 0, "latency_us", "must not be negative, got " + format_number(link.latency_us));
  return link;
}

LinkSpec parse_optional_link(const json& parent, const char* key, const std::string& where, LinkSpec fallback) {
  auto it = parent.find(key);
  return it == parent.end() ? fallback : parse_link(*it, where + "." + key, fallback);
}

// `device` holds the built-in values when `name` overrides a built-in profile.
DeviceProfile parse_device(const json& object, const std::string& where, DeviceProfile device, bool is_new) {
  JsonParams p(object, where, {});
  if (is_new) {
    get_required(p, "peak_tflops", device.peak_tflops);
    get_required(p, "mem_bandwidth_gbps", device.mem_bandwidth_gbps);
    get_required(p, "mem_gb", device.mem_gb);
  } else {
    p.get("peak_tflops", device.peak_tflops);
    p.get("mem_bandwidth_gbps", device.mem_bandwidth_gbps);
    p.get("mem_gb", device.mem_gb);
  }
  p.get("compute_efficiency", device.compute_efficiency);
  p.get("bandwidth_efficiency", device.bandwidth_efficiency);
  p.get("price_per_hour", device.price_per_hour);
  p.done();
  require_positive(p, "peak_tflops", device.peak_tflops);
  require_positive(p, "mem_bandwidth_gbps", device.mem_bandwidth_gbps);
  require_positive(p, "mem_gb", device.mem_gb);
  require_fraction(p, "compute_efficiency", device.compute_efficiency);
  require_fraction(p, "bandwidth_efficiency", device.bandwidth_efficiency);
  p.require(device.price_per_hour >= 0, "price_per_hour", "must not be negative");
  return device;
}

std::vector<DeviceProfile> parse_devices(const json& cluster, const std::string& source) {
  std::vector<DeviceProfile> devices = builtin_device_profiles();
  auto it = cluster.find("devices");
  if (it == cluster.end()) return devices;
  const std::string where = source + ": cluster.devices";
  if (!it->is_object()) throw Error(where + ": expected an object of device profiles, got " + it->dump());
  for (auto d = it->begin(); d != it->end(); ++d) {
    auto known =
        std::find_if(devices.begin(), devices.end(), [&](const DeviceProfile& x) { return x.name == d.key(); });
    DeviceProfile base;
    if (known != devices.end()) base = *known;
    base.name = d.key();
    DeviceProfile parsed = parse_device(d.value(), where + "." + d.key(), base, known == devices.end());
    if (known != devices.end()) *known = parsed;
    else devices.push_back(parsed);
  }
  return devices;
}

ModelSpec parse_model(const json& object, const std::string& where, const std::string& name) {
  ModelSpec m;
  m.name = name;
  JsonParams p(object, where, {});
  get_required(p, "params", m.params);
  get_int(p, object, "layers", m.layers);
  get_int(p, object, "hidden", m.hidden);
  get_int(p, object, "heads", m.heads);
  get_int(p, object, "kv_heads", m.kv_heads);
  get_int(p, object, "ffn_hidden", m.ffn_hidden);
  get_int(p, object, "vocab", m.vocab);
  p.get("bytes_per_param", m.bytes_per_param);
  p.get("kv_bytes_per_token", m.kv_bytes_per_token);
  p.get("weights_bytes", m.weights_bytes);
  p.get("version_of", m.version_of);
  get_int(p, object, "max_context", m.max_context);
  p.done();
  p.require(!p.has("version_of") || !m.version_of.empty(), "version_of", "must not be empty");
  p.require(m.version_of != name, "version_of", "a model cannot be a version of itself ('" + name + "')");
  require_positive(p, "params", m.params);
  p.require(m.layers >= 0, "layers", "must not be negative");
  if (m.layers > 0) {
    p.require(p.has("hidden"), "hidden", "required when layers > 0");
    p.require(p.has("heads"), "heads", "required when layers > 0");
    require_positive(p, "hidden", m.hidden);
    require_positive(p, "heads", m.heads);
  }
  if (m.kv_heads == 0) m.kv_heads = m.heads;
  p.require(m.kv_heads > 0 || m.layers == 0, "kv_heads", "must be positive");
  p.require(m.kv_heads <= m.heads, "kv_heads", "must not exceed heads");
  if (m.ffn_hidden == 0) m.ffn_hidden = 4 * m.hidden;
  p.require(m.ffn_hidden >= 0, "ffn_hidden", "must not be negative");
  require_positive(p, "vocab", m.vocab);
  require_positive(p, "max_context", m.max_context);
  require_positive(p, "bytes_per_param", m.bytes_per_param);
  p.require(m.kv_bytes_per_token >= 0, "kv_bytes_per_token", "must not be negative");
  p.require(m.weights_bytes >= 0, "weights_bytes", "must not be negative");
  m.kv_bytes_per_token = model_kv_bytes_per_token(m);
  m.weights_bytes = model_weights_bytes(m);
  return m;
}

// A request names a model or a version family; were a family also a model, a request for it
// could mean either, so family names and model names must differ.
void check_version_families(const std::vector<ModelSpec>& models, const std::string& where) {
  std::set<std::string> model_names;
  for (const ModelSpec& m : models) model_names.insert(m.name);
  for (const ModelSpec& m : models) {
    if (m.version_of.empty() || model_names.count(m.version_of) == 0) continue;
    throw Error(where + "." + m.name + ".version_of: '" + m.version_of +
                "' is a model of its own; a version family must not share its name with a model");
  }
}

std::vector<ModelSpec> parse_models(const json& cluster, const std::string& source) {
  std::vector<ModelSpec> models;
  auto it = cluster.find("models");
  if (it == cluster.end()) return models;
  const std::string where = source + ": cluster.models";
  if (!it->is_object()) throw Error(where + ": expected an object of models, got " + it->dump());
  for (auto m = it->begin(); m != it->end(); ++m) {
    models.push_back(parse_model(m.value(), where + "." + m.key(), m.key()));
  }
  check_version_families(models, where);
  return models;
}

template <class T>
std::string known_names(const std::vector<T>& items) {
  std::string s;
  for (const auto& x : items) s += (s.empty() ? "" : ", ") + x.name;
  return s.empty() ? "(none)" : s;
}

// "node/gpu3", "node/gpu0-1" (tensor parallel); on a CPU device (one CPU worker per slot) "cpu/cpu0".
std::string instance_name(const std::string& host, const std::vector<int>& gpus, const DeviceProfile& device) {
  std::string name = host + (device.name == "CPU" ? "/cpu" : "/gpu") + std::to_string(gpus.front());
  if (gpus.size() > 1) name += "-" + std::to_string(gpus.back());
  return name;
}

// The GPUs of one host and which of them instances took.
class GpuAllocator {
 public:
  explicit GpuAllocator(int gpu_count) : used_(gpu_count, false) {}

  // The lowest `tp` consecutive free GPUs; empty when none are free.
  std::vector<int> take_consecutive(int tp) {
    const int n = static_cast<int>(used_.size());
    for (int first = 0; first + tp <= n; ++first) {
      if (std::all_of(used_.begin() + first, used_.begin() + first + tp, [](bool u) { return !u; })) {
        std::vector<int> gpus;
        for (int g = first; g < first + tp; ++g) {
          used_[g] = true;
          gpus.push_back(g);
        }
        return gpus;
      }
    }
    return {};
  }
  bool in_range(int gpu) const { return gpu >= 0 && gpu < static_cast<int>(used_.size()); }
  bool used(int gpu) const { return used_[gpu]; }
  void take(int gpu) { used_[gpu] = true; }
  int free_count() const { return static_cast<int>(std::count(used_.begin(), used_.end(), false)); }

 private:
  std::vector<bool> used_;
};

struct InstanceEntry {
  std::string model;
  int tp = 1;
  int count = 1;
  std::vector<int> gpus;
};

InstanceEntry parse_instance_entry(const json& object, const std::string& where) {
  InstanceEntry e;
  JsonParams p(object, where, {});
  p.require(p.has("model"), "model", "required");
  p.get("model", e.model);
  get_int(p, object, "tp", e.tp);
  get_int(p, object, "count", e.count);
  if (auto g = object.find("gpus"); g != object.end()) {
    const bool all_ints =
        g->is_array() && std::all_of(g->begin(), g->end(), [](const json& x) { return x.is_number_integer(); });
    p.require(all_ints, "gpus", "expected an array of GPU indices, got " + g->dump());
  }
  p.get("gpus", e.gpus);
  p.done();
  p.require(e.tp > 0, "tp", "must be positive, got " + std::to_string(e.tp));
  p.require(e.count > 0, "count", "must be positive, got " + std::to_string(e.count));
  if (p.has("gpus")) {
    p.require(!e.gpus.empty(), "gpus", "must list at least one GPU");
    p.require(e.count == 1, "gpus", "explicit GPUs need count 1");
    p.require(!p.has("tp") || e.tp == static_cast<int>(e.gpus.size()), "gpus",
              "lists " + std::to_string(e.gpus.size()) + " GPUs but tp is " + std::to_string(e.tp));
    std::sort(e.gpus.begin(), e.gpus.end());
    e.tp = static_cast<int>(e.gpus.size());
  }
  return e;
}

std::vector<int> allocate_gpus(const InstanceEntry& e, GpuAllocator& gpus, const HostSpec& host,
                               const std::string& where) {
  if (e.gpus.empty()) {
    std::vector<int> taken = gpus.take_consecutive(e.tp);
    if (taken.empty()) {
      throw Error(where + ": needs " + std::to_string(e.tp) + " consecutive free GPUs but host '" + host.name +
                  "' has " + std::to_string(host.gpu_count) + " GPUs, " + std::to_string(gpus.free_count()) +
                  " of them free");
    }
    return taken;
  }
  for (int g : e.gpus) {
    if (!gpus.in_range(g)) {
      throw Error(where + ".gpus: GPU " + std::to_string(g) + " does not exist; host '" + host.name + "' has " +
                  std::to_string(host.gpu_count) + " GPUs");
    }
    if (gpus.used(g)) throw Error(where + ".gpus: GPU " + std::to_string(g) + " is used twice");
    gpus.take(g);
  }
  return e.gpus;
}

void check_fits(const ModelSpec& model, const DeviceProfile& device, int tp, const std::string& where) {
  const double capacity_bytes = tp * device.mem_gb * 1e9;
  if (model.weights_bytes > capacity_bytes) {
    throw Error(where + ": model '" + model.name + "' weights need " + format_number(model.weights_bytes / 1e9) +
                " GB but tp " + std::to_string(tp) + " x " + device.name + " has " +
                format_number(capacity_bytes / 1e9) + " GB");
  }
}

struct HostEntry {
  HostSpec spec;  // name is the base name before expansion
  int count = 1;
  json instances = json::array();
};

HostEntry parse_host_entry(const json& object, const std::string& where, const ClusterConfig& cfg) {
  HostEntry h;
  JsonParams p(object, where, {"gpu_link", "nic", "host_link"});  // links are parsed below, with defaults
  p.require(p.has("name"), "name", "required");
  p.get("name", h.spec.name);
  get_int(p, object, "count", h.count);
  p.require(p.has("device"), "device", "required");
  p.get("device", h.spec.device);
  p.require(p.has("gpus"), "gpus", "required");
  get_int(p, object, "gpus", h.spec.gpu_count);
  p.get("instances", h.instances);
  p.get("memory_bandwidth_gbps", h.spec.memory_bandwidth_gbps);
  p.done();
  p.require(std::isfinite(h.spec.memory_bandwidth_gbps) && h.spec.memory_bandwidth_gbps >= 0, "memory_bandwidth_gbps",
            "must be >= 0 (0: unbounded)");
  p.require(!h.spec.name.empty(), "name", "must not be empty");
  p.require(h.count > 0, "count", "must be positive, got " + std::to_string(h.count));
  p.require(h.spec.gpu_count > 0, "gpus", "must be positive, got " + std::to_string(h.spec.gpu_count));
  p.require(h.spec.gpu_count <= kMaxGpusPerHost, "gpus",
            "at most " + std::to_string(kMaxGpusPerHost) + " GPUs a host, got " + std::to_string(h.spec.gpu_count));
  p.require(cfg.find_device(h.spec.device) != nullptr, "device",
            "unknown device '" + h.spec.device + "'; known: " + known_names(cfg.devices));
  p.require(h.instances.is_array(), "instances", "expected an array, got " + h.instances.dump());
  h.spec.gpu_link = parse_optional_link(object, "gpu_link", where, default_gpu_link(h.spec.device));
  h.spec.nic = parse_optional_link(object, "nic", where, kDefaultNic);
  h.spec.host_link = parse_optional_link(object, "host_link", where, default_host_link(h.spec.device));
  return h;
}

void add_instances(const HostEntry& entry, const HostSpec& host, const std::string& where, ClusterConfig& cfg) {
  const DeviceProfile& device = *cfg.find_device(host.device);
  GpuAllocator gpus(host.gpu_count);
  for (std::size_t i = 0; i < entry.instances.size(); ++i) {
    const std::string iwhere = where + ".instances[" + std::to_string(i) + "]";
    InstanceEntry e = parse_instance_entry(entry.instances[i], iwhere);
    const ModelSpec* model = cfg.find_model(e.model);
    if (model == nullptr) {
      throw Error(iwhere + ".model: unknown model '" + e.model + "'; known: " + known_names(cfg.models));
    }
    check_fits(*model, device, e.tp, iwhere);
    for (int c = 0; c < e.count; ++c) {
      if (cfg.instances.size() >= kMaxInstances) {
        throw Error(iwhere + ": more than " + std::to_string(kMaxInstances) + " instances in the cluster");
      }
      InstanceSpec inst;
      inst.index = static_cast<int>(cfg.instances.size());
      inst.host = host.name;
      inst.gpus = allocate_gpus(e, gpus, host, iwhere);
      inst.name = instance_name(host.name, inst.gpus, device);
      inst.device = device;
      inst.model = *model;
      inst.gpu_link = host.gpu_link;
      inst.nic = host.nic;
      inst.host_link = host.host_link;
      cfg.instances.push_back(std::move(inst));
    }
  }
}

void parse_hosts(const json& cluster, const std::string& source, ClusterConfig& cfg) {
  auto it = cluster.find("hosts");
  const std::string where = source + ": cluster.hosts";
  if (it == cluster.end()) throw Error(where + ": required");
  if (!it->is_array() || it->empty()) {
    throw Error(where + ": expected a non-empty array of hosts, got " + it->dump());
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < it->size(); ++i) {
    const std::string hwhere = where + "[" + std::to_string(i) + "]";
    HostEntry entry = parse_host_entry((*it)[i], hwhere, cfg);
    if (static_cast<std::size_t>(entry.count) > kMaxHosts - cfg.hosts.size()) {
      throw Error(hwhere + ".count: more than " + std::to_string(kMaxHosts) + " hosts in the cluster");
    }
    for (int c = 0; c < entry.count; ++c) {
      HostSpec host = entry.spec;
      if (entry.count > 1) host.name += std::to_string(c);
      if (!names.insert(host.name).second) throw Error(hwhere + ".name: duplicate host name '" + host.name + "'");
      add_instances(entry, host, hwhere, cfg);
      cfg.hosts.push_back(std::move(host));
    }
  }
  if (cfg.instances.empty()) throw Error(where + ": no host defines any instances");
}

}  // namespace

const ModelSpec* ClusterConfig::find_model(const std::string& name) const {
  for (const auto& m : models) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

std::vector<std::string> ClusterConfig::versions_of(const std::string& family) const {
  std::vector<std::string> names;
  if (family.empty()) return names;
  for (const auto& m : models) {
    if (m.version_of == family) names.push_back(m.name);
  }
  return names;
}

const DeviceProfile* ClusterConfig::find_device(const std::string& name) const {
  for (const auto& d : devices) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

ClusterConfig parse_cluster_config(const nlohmann::json& cluster, const std::string& source) {
  JsonParams p(cluster, source + ": cluster", {"devices", "models", "router", "hosts"});
  p.done();
  ClusterConfig cfg;
  cfg.devices = parse_devices(cluster, source);
  cfg.models = parse_models(cluster, source);
  cfg.router_nic = kDefaultNic;
  if (auto r = cluster.find("router"); r != cluster.end()) {
    JsonParams rp(*r, source + ": cluster.router", {"nic"});
    rp.done();
    cfg.router_nic = parse_optional_link(*r, "nic", source + ": cluster.router", kDefaultNic);
  }
  parse_hosts(cluster, source, cfg);
  return cfg;
}

}  // namespace twinfer
