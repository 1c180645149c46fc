#include "core/cluster_config.h"

#include <fstream>
#include <initializer_list>
#include <sstream>

#include <gtest/gtest.h>

#include "core/error.h"

namespace twinfer {
namespace {

using nlohmann::json;

json read_config(const std::string& name) {
  const std::string path = std::string(TWINFER_SOURCE_DIR) + "/configs/" + name;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

ClusterConfig parse_shipped(const std::string& name) {
  const json config = read_config(name);
  for (const char* key : {"cluster", "policies", "workload", "sim"}) {
    EXPECT_TRUE(config.contains(key)) << name << " lacks " << key;
  }
  return parse_cluster_config(config.at("cluster"), name);
}

// One host "h" of 4 H100s with four tp-1 instances of a 2 GB model "m".
json small_cluster() {
  return json::parse(R"({
    "models": {"m": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16}},
    "hosts": [{"name": "h", "device": "H100", "gpus": 4, "instances": [{"model": "m", "count": 4}]}]
  })");
}

std::string error_of(const json& cluster) {
  try {
    parse_cluster_config(cluster, "test.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Expects parsing to fail with a message naming the file and containing each of `parts`.
void expect_error(const json& cluster, std::initializer_list<const char*> parts) {
  const std::string message = error_of(cluster);
  EXPECT_EQ(message.rfind("test.json: ", 0), 0u) << message;
  for (const char* part : parts) {
    EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' not in: " << message;
  }
}

std::vector<std::string> instance_names(const ClusterConfig& cfg) {
  std::vector<std::string> names;
  for (const auto& inst : cfg.instances) names.push_back(inst.name);
  return names;
}

TEST(ClusterConfigTest, H100x8) {
  ClusterConfig cfg = parse_shipped("h100x8.json");
  ASSERT_EQ(cfg.instances.size(), 8u);
  ASSERT_EQ(cfg.hosts.size(), 1u);
  EXPECT_EQ(cfg.hosts[0].name, "node");
  EXPECT_EQ(cfg.hosts[0].gpu_count, 8);
  for (int i = 0; i < 8; ++i) {
    const InstanceSpec& inst = cfg.instances[i];
    EXPECT_EQ(inst.index, i);
    EXPECT_EQ(inst.name, "node/gpu" + std::to_string(i));
    EXPECT_EQ(inst.gpus, std::vector<int>{i});
    EXPECT_EQ(inst.device.name, "H100");
    EXPECT_EQ(inst.model.name, "llama-3-8b");
  }
  const ModelSpec& m = cfg.instances[0].model;
  EXPECT_EQ(m.layers, 32);
  EXPECT_EQ(m.vocab, 128256);
  // 2 (K, V) * 32 layers * 8 KV heads * 128 head dim * 2 bytes.
  EXPECT_DOUBLE_EQ(m.kv_bytes_per_token, 131072);
  EXPECT_DOUBLE_EQ(m.weights_bytes, 16.06e9);
}

TEST(ClusterConfigTest, Gpu64) {
  ClusterConfig cfg = parse_shipped("gpu64.json");
  ASSERT_EQ(cfg.instances.size(), 64u);
  ASSERT_EQ(cfg.hosts.size(), 8u);
  EXPECT_EQ(cfg.hosts[0].name, "node0");
  EXPECT_EQ(cfg.hosts[7].name, "node7");
  EXPECT_EQ(cfg.instances[9].name, "node1/gpu1");
  EXPECT_EQ(cfg.instances[63].name, "node7/gpu7");
  EXPECT_EQ(cfg.instances[63].index, 63);
  EXPECT_EQ(cfg.instances[63].host, "node7");
  EXPECT_DOUBLE_EQ(cfg.router_nic.bandwidth_gbps, 50);
}

TEST(ClusterConfigTest, VidurLlama2_70bTp2) {
  ClusterConfig cfg = parse_shipped("vidur_llama2_70b_a100_tp2.json");
  EXPECT_EQ(instance_names(cfg),
            (std::vector<std::string>{"node/gpu0-1", "node/gpu2-3", "node/gpu4-5", "node/gpu6-7"}));
  for (const auto& inst : cfg.instances) {
    EXPECT_EQ(inst.tp(), 2);
    EXPECT_EQ(inst.device.name, "A100");
    EXPECT_DOUBLE_EQ(inst.gpu_link.bandwidth_gbps, 300);
  }
  const ModelSpec& m = cfg.instances[0].model;
  EXPECT_EQ(m.layers, 80);
  EXPECT_EQ(m.hidden, 8192);
  EXPECT_EQ(m.kv_heads, 8);
  EXPECT_EQ(m.ffn_hidden, 28672);
  // 2 * 80 layers * 8 KV heads * 128 head dim * 2 bytes.
  EXPECT_DOUBLE_EQ(m.kv_bytes_per_token, 327680);
}

TEST(ClusterConfigTest, Heterogeneous) {
  ClusterConfig cfg = parse_shipped("heterogeneous.json");
  ASSERT_EQ(cfg.hosts.size(), 4u);
  EXPECT_EQ(cfg.hosts[2].name, "l4-0");
  EXPECT_EQ(cfg.hosts[3].name, "l4-1");
  ASSERT_EQ(cfg.instances.size(), 16u);
  EXPECT_EQ(cfg.instances[0].device.name, "H100");
  EXPECT_EQ(cfg.instances[4].device.name, "A100");
  EXPECT_EQ(cfg.instances[15].device.name, "L4");
  EXPECT_EQ(cfg.instances[15].name, "l4-1/gpu3");
  EXPECT_DOUBLE_EQ(cfg.instances[15].device.price_per_hour, 0.80);
  // A partial override keeps the built-in figures.
  EXPECT_DOUBLE_EQ(cfg.find_device("L4")->peak_tflops, 121);
  EXPECT_DOUBLE_EQ(cfg.find_device("H100")->price_per_hour, 4.00);
}

TEST(ClusterConfigTest, DnnRequestLevel) {
  ClusterConfig cfg = parse_shipped("dnn_request_level.json");
  ASSERT_EQ(cfg.instances.size(), 2u);
  const ModelSpec& m = cfg.instances[0].model;
  EXPECT_EQ(m.name, "bert-base");
  EXPECT_EQ(m.kv_heads, 12);  // defaults to heads
  EXPECT_DOUBLE_EQ(m.weights_bytes, 220e6);
}

TEST(ClusterConfigTest, EdgeCloud) {
  ClusterConfig cfg = parse_shipped("edge_cloud.json");
  ASSERT_EQ(cfg.instances.size(), 6u);
  EXPECT_EQ(instance_names(cfg), (std::vector<std::string>{"edge/gpu0", "edge/gpu1", "cloud/gpu0", "cloud/gpu1",
                                                            "cloud/gpu2", "cloud/gpu3"}));
  EXPECT_EQ(cfg.instances[0].device.name, "L4");
  EXPECT_DOUBLE_EQ(cfg.instances[0].device.price_per_hour, 0);  // owned: free to use
  EXPECT_DOUBLE_EQ(cfg.instances[0].nic.latency_us, 50);
  EXPECT_EQ(cfg.instances[2].device.name, "H100");
  EXPECT_DOUBLE_EQ(cfg.instances[2].device.price_per_hour, 4);
  EXPECT_DOUBLE_EQ(cfg.instances[5].nic.latency_us, 40000);
  EXPECT_DOUBLE_EQ(cfg.router_nic.latency_us, 50);
}

TEST(ClusterConfigTest, HostCountExpandsAndInstancesFillGpusInOrder) {
  json c = small_cluster();
  c["hosts"] = json::parse(R"([{"name": "n", "count": 2, "device": "A100", "gpus": 8,
    "instances": [{"model": "m", "tp": 2, "count": 2}, {"model": "m"}, {"model": "m", "gpus": [7, 6]},
                  {"model": "m"}]}])");
  ClusterConfig cfg = parse_cluster_config(c, "test.json");
  // The last instance takes the lowest free GPU, 5, left between gpu4 and the explicit 6-7.
  EXPECT_EQ(instance_names(cfg), (std::vector<std::string>{"n0/gpu0-1", "n0/gpu2-3", "n0/gpu4", "n0/gpu6-7",
                                                            "n0/gpu5", "n1/gpu0-1", "n1/gpu2-3", "n1/gpu4",
                                                            "n1/gpu6-7", "n1/gpu5"}));
  EXPECT_EQ(cfg.instances[1].gpus, (std::vector<int>{2, 3}));
  EXPECT_EQ(cfg.instances[3].gpus, (std::vector<int>{6, 7}));
  EXPECT_EQ(cfg.instances[3].tp(), 2);
  EXPECT_EQ(cfg.instances[6].host, "n1");
  EXPECT_EQ(cfg.instances[6].index, 6);
  ASSERT_EQ(cfg.hosts.size(), 2u);
  EXPECT_EQ(cfg.hosts[1].name, "n1");
  EXPECT_EQ(cfg.hosts[1].device, "A100");
}

TEST(ClusterConfigTest, DefaultsForLinksAndModelFields) {
  json c = small_cluster();
  c["hosts"].push_back(json::parse(R"({"name": "l", "device": "L4", "gpus": 1, "instances": [{"model": "m"}]})"));
  ClusterConfig cfg = parse_cluster_config(c, "test.json");
  EXPECT_DOUBLE_EQ(cfg.router_nic.bandwidth_gbps, 25);
  EXPECT_DOUBLE_EQ(cfg.router_nic.latency_us, 5);
  EXPECT_DOUBLE_EQ(cfg.hosts[0].gpu_link.bandwidth_gbps, 450);
  EXPECT_DOUBLE_EQ(cfg.hosts[0].gpu_link.latency_us, 2);
  EXPECT_DOUBLE_EQ(cfg.hosts[0].nic.bandwidth_gbps, 25);
  EXPECT_DOUBLE_EQ(cfg.hosts[1].gpu_link.bandwidth_gbps, 32);  // PCIe for L4
  EXPECT_DOUBLE_EQ(cfg.instances[4].gpu_link.bandwidth_gbps, 32);
  const ModelSpec& m = *cfg.find_model("m");
  EXPECT_EQ(m.kv_heads, 16);
  EXPECT_EQ(m.ffn_hidden, 8192);
  EXPECT_EQ(m.vocab, 32000);
  EXPECT_DOUBLE_EQ(m.kv_bytes_per_token, 2.0 * 16 * 2048 * 2);
  EXPECT_DOUBLE_EQ(m.weights_bytes, 2e9);
  EXPECT_EQ(m.max_context, 4096);
}

TEST(ClusterConfigTest, ExplicitSizesAreKept) {
  json c = small_cluster();
  c["models"]["m"]["kv_bytes_per_token"] = 1000;
  c["models"]["m"]["weights_bytes"] = 3e9;
  c["models"]["m"]["max_context"] = 131072;
  ClusterConfig cfg = parse_cluster_config(c, "test.json");
  EXPECT_DOUBLE_EQ(cfg.instances[0].model.kv_bytes_per_token, 1000);
  EXPECT_DOUBLE_EQ(cfg.instances[0].model.weights_bytes, 3e9);
  EXPECT_EQ(cfg.instances[0].model.max_context, 131072);
}

TEST(ClusterConfigTest, ShippedModelsDeclareTheirRealContext) {
  EXPECT_EQ(parse_shipped("h100x8.json").find_model("llama-3-8b")->max_context, 8192);
  EXPECT_EQ(parse_shipped("vidur_llama2_70b_a100_tp2.json").find_model("llama-2-70b")->max_context, 4096);
  EXPECT_EQ(parse_shipped("dnn_request_level.json").find_model("bert-base")->max_context, 512);
}

TEST(ClusterConfigTest, ConfigAddsAndOverridesDevices) {
  json c = small_cluster();
  c["devices"] = json::parse(R"({"MyGPU": {"peak_tflops": 100, "mem_bandwidth_gbps": 1000, "mem_gb": 40,
                                            "price_per_hour": 1.5},
                                  "A100": {"mem_gb": 40}})");
  c["hosts"][0]["device"] = "MyGPU";
  ClusterConfig cfg = parse_cluster_config(c, "test.json");
  ASSERT_EQ(cfg.devices.size(), builtin_device_profiles().size() + 1);
  EXPECT_EQ(cfg.devices.back().name, "MyGPU");
  EXPECT_DOUBLE_EQ(cfg.instances[0].device.mem_gb, 40);
  EXPECT_DOUBLE_EQ(cfg.instances[0].device.compute_efficiency, 0.7);
  EXPECT_DOUBLE_EQ(cfg.instances[0].device.price_per_hour, 1.5);
  EXPECT_DOUBLE_EQ(cfg.find_device("A100")->mem_gb, 40);
  EXPECT_DOUBLE_EQ(cfg.find_device("A100")->peak_tflops, 312);
}

TEST(ClusterConfigTest, FindReturnsNullForUnknownNames) {
  ClusterConfig cfg = parse_cluster_config(small_cluster(), "test.json");
  EXPECT_EQ(cfg.find_model("nope"), nullptr);
  EXPECT_EQ(cfg.find_device("nope"), nullptr);
  ASSERT_NE(cfg.find_model("m"), nullptr);
  EXPECT_EQ(cfg.find_device("CPU")->name, "CPU");
}

TEST(ClusterConfigTest, UnknownKeysAreRejectedWithTheirPath) {
  json c = small_cluster();
  c["extra"] = 1;
  expect_error(c, {"cluster: unknown key 'extra'", "hosts"});
  c = small_cluster();
  c["hosts"][0]["gpu"] = 4;
  expect_error(c, {"cluster.hosts[0]: unknown key 'gpu'", "gpus"});
  c = small_cluster();
  c["hosts"][0]["instances"][0]["replicas"] = 2;
  expect_error(c, {"cluster.hosts[0].instances[0]: unknown key 'replicas'", "count"});
  c = small_cluster();
  c["hosts"][0]["nic"] = json::parse(R"({"bandwidth": 1})");
  expect_error(c, {"cluster.hosts[0].nic: unknown key 'bandwidth'", "bandwidth_gbps"});
  c = small_cluster();
  c["models"]["m"]["kv_head"] = 8;
  expect_error(c, {"cluster.models.m: unknown key 'kv_head'", "kv_heads"});
  c = small_cluster();
  c["devices"] = json::parse(R"({"H100": {"tflops": 1}})");
  expect_error(c, {"cluster.devices.H100: unknown key 'tflops'", "peak_tflops"});
  c = small_cluster();
  c["router"] = json::parse(R"({"link": {}})");
  expect_error(c, {"cluster.router: unknown key 'link'", "nic"});
}

TEST(ClusterConfigTest, UnknownDeviceListsKnownOnes) {
  json c = small_cluster();
  c["hosts"][0]["device"] = "V100";
  expect_error(c, {"cluster.hosts[0].device", "unknown device 'V100'", "H100, H200, A100, L4, CPU"});
}

TEST(ClusterConfigTest, UnknownModelListsKnownOnes) {
  json c = small_cluster();
  c["hosts"][0]["instances"][0]["model"] = "gpt";
  expect_error(c, {"cluster.hosts[0].instances[0].model", "unknown model 'gpt'", "known: m"});
}

TEST(ClusterConfigTest, MoreGpusThanTheHostHas) {
  json c = small_cluster();
  c["hosts"][0]["instances"][0]["count"] = 5;
  expect_error(c, {"cluster.hosts[0].instances[0]", "has 4 GPUs, 0 of them free"});
  c = small_cluster();
  c["hosts"][0]["instances"] = json::parse(R"([{"model": "m", "gpus": [4]}])");
  expect_error(c, {"cluster.hosts[0].instances[0].gpus", "GPU 4 does not exist"});
  c = small_cluster();
  c["hosts"][0]["instances"] = json::parse(R"([{"model": "m", "gpus": [1]}, {"model": "m", "gpus": [0, 1]}])");
  expect_error(c, {"cluster.hosts[0].instances[1].gpus", "GPU 1 is used twice"});
}

TEST(ClusterConfigTest, SizesPastTheLimitsAreErrorsNotHours) {
  json c = small_cluster();
  c["hosts"][0]["gpus"] = 2000000000;
  EXPECT_EQ(error_of(c), "test.json: cluster.hosts[0].gpus: at most 1024 GPUs a host, got 2000000000");
  c = small_cluster();
  c["hosts"][0]["gpus"] = 1024;
  c["hosts"][0]["instances"][0]["count"] = 1024;
  EXPECT_EQ(parse_cluster_config(c, "test.json").instances.size(), 1024u);

  c = small_cluster();
  c["hosts"][0]["count"] = 100000000;
  EXPECT_EQ(error_of(c), "test.json: cluster.hosts[0].count: more than 65536 hosts in the cluster");
  // The limit is on all hosts together: 65536 of one entry leave no room for another.
  c = small_cluster();
  c["hosts"][0]["count"] = 65536;
  c["hosts"][0]["instances"] = json::array();
  c["hosts"].push_back(json::parse(R"({"name": "x", "device": "H100", "gpus": 1})"));
  EXPECT_EQ(error_of(c), "test.json: cluster.hosts[1].count: more than 65536 hosts in the cluster");

  // 65 hosts of 1024 one-GPU instances: the 65537th instance is one too many.
  c = small_cluster();
  c["hosts"][0]["count"] = 65;
  c["hosts"][0]["gpus"] = 1024;
  c["hosts"][0]["instances"][0]["count"] = 1024;
  EXPECT_EQ(error_of(c), "test.json: cluster.hosts[0].instances[0]: more than 65536 instances in the cluster");
}

TEST(ClusterConfigTest, DuplicateHostNames) {
  json c = small_cluster();
  c["hosts"][0]["count"] = 2;  // h0, h1
  c["hosts"].push_back(json::parse(R"({"name": "h1", "device": "H100", "gpus": 1})"));
  expect_error(c, {"cluster.hosts[1].name", "duplicate host name 'h1'"});
}

TEST(ClusterConfigTest, MissingRequiredFields) {
  json c = small_cluster();
  c["hosts"][0].erase("device");
  expect_error(c, {"cluster.hosts[0].device: required"});
  c = small_cluster();
  c["hosts"][0].erase("gpus");
  expect_error(c, {"cluster.hosts[0].gpus: required"});
  c = small_cluster();
  c["hosts"][0].erase("name");
  expect_error(c, {"cluster.hosts[0].name: required"});
  c = small_cluster();
  c["hosts"][0]["instances"][0].erase("model");
  expect_error(c, {"cluster.hosts[0].instances[0].model: required"});
  c = small_cluster();
  c["models"]["m"].erase("params");
  expect_error(c, {"cluster.models.m.params: required"});
  c = small_cluster();
  c["models"]["m"].erase("heads");
  expect_error(c, {"cluster.models.m.heads: required"});
  c = small_cluster();
  c["devices"] = json::parse(R"({"X": {"peak_tflops": 1, "mem_gb": 1}})");
  expect_error(c, {"cluster.devices.X.mem_bandwidth_gbps: required"});
  c = small_cluster();
  c.erase("hosts");
  expect_error(c, {"cluster.hosts: required"});
}

TEST(ClusterConfigTest, NonPositiveNumbers) {
  json c = small_cluster();
  c["hosts"][0]["gpus"] = 0;
  expect_error(c, {"cluster.hosts[0].gpus: must be positive"});
  c = small_cluster();
  c["hosts"][0]["count"] = -1;
  expect_error(c, {"cluster.hosts[0].count: must be positive"});
  c = small_cluster();
  c["hosts"][0]["instances"][0]["tp"] = 0;
  expect_error(c, {"cluster.hosts[0].instances[0].tp: must be positive"});
  c = small_cluster();
  c["models"]["m"]["params"] = -5;
  expect_error(c, {"cluster.models.m.params: must be positive"});
  c = small_cluster();
  c["models"]["m"]["max_context"] = 0;
  expect_error(c, {"cluster.models.m.max_context: must be positive"});
  c = small_cluster();
  c["devices"] = json::parse(R"({"H100": {"peak_tflops": 0}})");
  expect_error(c, {"cluster.devices.H100.peak_tflops: must be positive"});
  c = small_cluster();
  c["hosts"][0]["gpu_link"] = json::parse(R"({"bandwidth_gbps": 0})");
  expect_error(c, {"cluster.hosts[0].gpu_link.bandwidth_gbps: must be positive"});
  c = small_cluster();
  c["router"] = json::parse(R"({"nic": {"latency_us": -1}})");
  expect_error(c, {"cluster.router.nic.latency_us: must not be negative"});
  c = small_cluster();
  c["hosts"][0]["memory_bandwidth_gbps"] = -1;
  expect_error(c, {"cluster.hosts[0].memory_bandwidth_gbps: must be >= 0 (0: unbounded)"});
  c["hosts"][0]["memory_bandwidth_gbps"] = 300;
  EXPECT_EQ(parse_cluster_config(c, "test.json").hosts[0].memory_bandwidth_gbps, 300);
}

TEST(ClusterConfigTest, WrongTypes) {
  json c = small_cluster();
  c["hosts"][0]["gpus"] = 2.5;
  expect_error(c, {"cluster.hosts[0].gpus: expected an integer"});
  c = small_cluster();
  c["models"]["m"]["max_context"] = "8k";
  expect_error(c, {"cluster.models.m.max_context: expected an integer"});
  c = small_cluster();
  c["hosts"][0]["device"] = 7;
  expect_error(c, {"cluster.hosts[0].device: expected a string"});
  c = small_cluster();
  c["hosts"][0]["instances"][0]["gpus"] = json::parse(R"(["0"])");
  expect_error(c, {"cluster.hosts[0].instances[0].gpus: expected an array of GPU indices"});
}

TEST(ClusterConfigTest, WeightsMustFitInTheInstancesMemory) {
  json c = small_cluster();
  c["models"]["m"]["params"] = 50e9;  // 100 GB of weights, 80 GB per H100
  expect_error(c, {"cluster.hosts[0].instances[0]", "weights need 100 GB but tp 1 x H100 has 80 GB"});
  c["hosts"][0]["instances"][0]["tp"] = 2;
  c["hosts"][0]["instances"][0]["count"] = 2;
  EXPECT_EQ(parse_cluster_config(c, "test.json").instances.size(), 2u);
}

TEST(ClusterConfigTest, ExplicitGpusMustAgreeWithTp) {
  json c = small_cluster();
  c["hosts"][0]["instances"] = json::parse(R"([{"model": "m", "tp": 2, "gpus": [0, 1, 2]}])");
  expect_error(c, {"cluster.hosts[0].instances[0].gpus", "lists 3 GPUs but tp is 2"});
}

TEST(ClusterConfigTest, AClusterNeedsInstances) {
  json c = small_cluster();
  c["hosts"][0].erase("instances");
  expect_error(c, {"cluster.hosts: no host defines any instances"});
}

// Model "m" in two versions, "m-v1" and "m-v2", each with an instance on host "h".
json versioned_cluster() {
  json c = small_cluster();
  c["models"] = json::parse(R"({
    "m-v1": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16, "version_of": "m"},
    "m-v2": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16, "version_of": "m"},
    "other": {"params": 1e9}
  })");
  c["hosts"][0]["instances"] = json::parse(R"([{"model": "m-v1", "count": 3}, {"model": "m-v2"}])");
  return c;
}

TEST(ClusterConfigTest, ModelVersionsNameTheirFamily) {
  ClusterConfig cfg = parse_cluster_config(versioned_cluster(), "test.json");
  EXPECT_EQ(cfg.find_model("m-v1")->version_of, "m");
  EXPECT_EQ(cfg.find_model("m-v2")->version_of, "m");
  EXPECT_EQ(cfg.find_model("other")->version_of, "");
  EXPECT_EQ(cfg.find_model("m"), nullptr);
  EXPECT_EQ(cfg.instances[0].model.version_of, "m");
  EXPECT_EQ(cfg.instances[3].model.name, "m-v2");
  EXPECT_EQ(cfg.versions_of("m"), (std::vector<std::string>{"m-v1", "m-v2"}));
  EXPECT_TRUE(cfg.versions_of("other").empty());  // a model, not a family
  EXPECT_TRUE(cfg.versions_of("m-v1").empty());
  EXPECT_TRUE(cfg.versions_of("").empty());       // unversioned models are not a family ""
}

TEST(ClusterConfigTest, OneVersionMakesAFamily) {
  json c = versioned_cluster();
  c["models"]["m-v2"].erase("version_of");
  ClusterConfig cfg = parse_cluster_config(c, "test.json");
  EXPECT_EQ(cfg.versions_of("m"), (std::vector<std::string>{"m-v1"}));
}

TEST(ClusterConfigTest, VersionOfErrorsNameTheKey) {
  json c = versioned_cluster();
  c["models"]["m-v1"]["version_of"] = "m-v1";
  expect_error(c, {"cluster.models.m-v1.version_of", "cannot be a version of itself"});
  c = versioned_cluster();
  c["models"]["m-v2"]["version_of"] = "other";  // "other" is a model of its own
  expect_error(c, {"cluster.models.m-v2.version_of", "'other' is a model of its own"});
  c = versioned_cluster();
  c["models"]["m-v1"]["version_of"] = "m-v2";  // a version of a version
  expect_error(c, {"cluster.models.m-v1.version_of", "'m-v2' is a model of its own"});
  c = versioned_cluster();
  c["models"]["m-v1"]["version_of"] = "";
  expect_error(c, {"cluster.models.m-v1.version_of: must not be empty"});
  c = versioned_cluster();
  c["models"]["m-v1"]["version_of"] = 2;
  expect_error(c, {"cluster.models.m-v1.version_of: expected a string"});
}

TEST(ClusterConfigTest, InstancesCarryTheirHostsNic) {
  json c = small_cluster();
  c["hosts"][0]["nic"] = json::parse(R"({"bandwidth_gbps": 1.25, "latency_us": 40000})");
  c["hosts"].push_back(json::parse(R"({"name": "l", "device": "L4", "gpus": 1, "instances": [{"model": "m"}]})"));
  ClusterConfig cfg = parse_cluster_config(c, "test.json");
  ASSERT_EQ(cfg.instances.size(), 5u);
  EXPECT_DOUBLE_EQ(cfg.instances[3].nic.bandwidth_gbps, 1.25);
  EXPECT_DOUBLE_EQ(cfg.instances[3].nic.latency_us, 40000);
  EXPECT_DOUBLE_EQ(cfg.instances[4].nic.bandwidth_gbps, 25);  // the default NIC
  EXPECT_DOUBLE_EQ(cfg.instances[4].nic.latency_us, 5);
}

}  // namespace
}  // namespace twinfer
