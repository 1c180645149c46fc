// The cluster a run models or serves on: devices, models, hosts, links and model instances.
// Read from one JSON config, shared by the simulator and the runtime (see configs/ for examples).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace twinfer {

// What a device can do. Built-in profiles: H100, H200, A100, L4, CPU (see device_profiles.cc); a
// config may add or override profiles under "devices".
struct DeviceProfile {
  std::string name;
  double peak_tflops = 0;        // dense FP16/BF16 tensor throughput, 1e12 FLOP/s
  double mem_bandwidth_gbps = 0; // HBM/DRAM bandwidth, 1e9 bytes/s
  double mem_gb = 0;             // device memory, 1e9 bytes
  double compute_efficiency = 0.7;  // achievable fraction of peak_tflops for large GEMMs
  double bandwidth_efficiency = 0.8; // achievable fraction of mem_bandwidth_gbps
  double price_per_hour = 0;     // currency units per device-hour (cost reports)
};

// A decoder-only transformer (or, with layers = 0, an opaque model sized by params alone).
struct ModelSpec {
  std::string name;
  double params = 0;             // parameter count
  int layers = 0;
  int hidden = 0;                // model width
  int heads = 0;                 // attention heads
  int kv_heads = 0;              // key/value heads (GQA); 0 means = heads
  int ffn_hidden = 0;            // MLP width; 0 means 4 * hidden
  int vocab = 32000;
  double bytes_per_param = 2;    // weights' element size
  double kv_bytes_per_token = 0; // KV cache bytes per token over all layers; 0: derived
  double weights_bytes = 0;      // 0: params * bytes_per_param
  std::string version_of;        // non-empty: this model is a version of that family name (traffic
                                 // splits); the family name is never itself a model's name
  // The longest sequence the model serves, prompt plus output, in tokens: a request over it is
  // rejected at admission by every engine (policies/servable.h), and the runtime sizes its rotary
  // tables and attention workspace by it.
  int max_context = kDefaultMaxContext;
  static constexpr int kDefaultMaxContext = 4096;  // Llama-2's, and the runtime transformer's default
};

// A network link: bandwidth in 1e9 bytes/s and one-way latency in microseconds.
struct LinkSpec {
  double bandwidth_gbps = 0;
  double latency_us = 0;
};

// One model replica: a model on one or more GPUs of one host (tensor parallelism = gpus.size()).
// Each instance is one worker: it has one queue and one batcher.
struct InstanceSpec {
  int index = 0;                 // position in ClusterConfig::instances
  std::string name;              // "host/gpu0-1", unique
  std::string host;              // host name
  std::vector<int> gpus;         // GPU indices on that host
  DeviceProfile device;          // profile of each of its GPUs
  ModelSpec model;
  LinkSpec gpu_link;             // the host's GPU interconnect (all-reduce for tensor parallelism)
  LinkSpec nic;                  // the host's link to the cluster network (its network distance)
  LinkSpec host_link;            // each of its GPUs' link to host memory (PCIe): the KV host tier's copies
  int tp() const { return static_cast<int>(gpus.size()); }
};

struct HostSpec {
  std::string name;
  std::string device;            // device profile name of its GPUs
  int gpu_count = 0;
  LinkSpec gpu_link;             // between GPUs of this host (NVLink, PCIe)
  LinkSpec nic;                  // host to the cluster network
  LinkSpec host_link;            // each GPU to host memory (PCIe)
  // Host memory's bandwidth for the KV host tier's copies of all its GPUs at once, 1e9 bytes/s
  // (twinfer sim with the flow network); 0: unbounded (each GPU's host_link bounds its own).
  double memory_bandwidth_gbps = 0;
};

struct ClusterConfig {
  std::vector<DeviceProfile> devices;   // every known profile: built-in ones, then the config's
  std::vector<ModelSpec> models;
  std::vector<HostSpec> hosts;
  std::vector<InstanceSpec> instances;  // the workers, in config order
  LinkSpec router_nic;                  // the router's (front end's) link to the cluster network

  const ModelSpec* find_model(const std::string& name) const;
  const DeviceProfile* find_device(const std::string& name) const;
  // The names of the models whose version_of is `family`, in `models` order; empty when `family`
  // has no versions (or is "").
  std::vector<std::string> versions_of(const std::string& family) const;
};

// Reads the "cluster" part of a config. `source` names the file for error messages. Throws
// twinfer::Error naming the key path (e.g. "cluster.hosts[2].gpus") on any bad or unknown key.
ClusterConfig parse_cluster_config(const nlohmann::json& cluster, const std::string& source);

// The built-in device profiles (H100, H200, A100, L4, CPU).
const std::vector<DeviceProfile>& builtin_device_profiles();

}  // namespace twinfer
