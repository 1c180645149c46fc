#include "policies/run_config.h"

#include <fstream>

#include <gtest/gtest.h>

#include "policies/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::error_of;

TEST(ApplyOverride, SetsNestedKeysWithJsonValues) {
  nlohmann::json c = {{"policies", {{"batcher", {{"name", "continuous"}, {"max_num_seqs", 8}}}}}};
  apply_override(c, "policies.batcher.max_num_seqs=64");
  apply_override(c, "policies.batcher.chunked_prefill=false");
  apply_override(c, "workload.slo.ttft_ms=250.5");
  EXPECT_EQ(c["policies"]["batcher"]["max_num_seqs"], 64);
  EXPECT_EQ(c["policies"]["batcher"]["chunked_prefill"], false);
  EXPECT_EQ(c["workload"]["slo"]["ttft_ms"], 250.5);
}

TEST(ApplyOverride, NonJsonValueIsAString) {
  nlohmann::json c = nlohmann::json::object();
  apply_override(c, "policies.router=least_work");
  EXPECT_EQ(c["policies"]["router"], "least_work");
}

TEST(ApplyOverride, KeyUnderAPolicyNameTurnsItIntoAnObject) {
  nlohmann::json c = {{"policies", {{"router", "power_of_two"}}}};
  apply_override(c, "policies.router.choices=3");
  EXPECT_EQ(c["policies"]["router"], (nlohmann::json{{"name", "power_of_two"}, {"choices", 3}}));
}

TEST(ApplyOverride, IndexesArrays) {
  nlohmann::json c = {{"cluster", {{"hosts", {{{"name", "a"}}, {{"name", "b"}}}}}}};
  apply_override(c, "cluster.hosts.1.name=z");
  EXPECT_EQ(c["cluster"]["hosts"][1]["name"], "z");
  EXPECT_NE(error_of([&] { apply_override(c, "cluster.hosts.5.name=z"); }).find("'5' is not an index of an array of 2"),
            std::string::npos);
}

TEST(ApplyOverride, AnIndexTooLargeForAnyIntegerIsNotAnIndex) {
  nlohmann::json c = {{"a", {1, 2}}};
  EXPECT_EQ(error_of([&] { apply_override(c, "a.99999999999999999999999=3"); }),
            "--set a.99999999999999999999999: '99999999999999999999999' is not an index of an array of 2");
  apply_override(c, "a.01=5");  // leading zeros still name an index
  EXPECT_EQ(c["a"], (nlohmann::json{1, 5}));
}

TEST(ApplyOverride, RejectsAKeyOrValueThatIsNotUtf8) {
  nlohmann::json c = nlohmann::json::object();
  EXPECT_EQ(error_of([&] { apply_override(c, "cluster.hosts.0.g\xec\xecpus=2"); }), "--set: the key is not valid UTF-8");
  EXPECT_TRUE(c.empty()) << "nothing is set before the check";
  EXPECT_EQ(error_of([&] { apply_override(c, "sim.network=\xff\xfe"); }),
            "--set sim.network: the value is not valid UTF-8");
  apply_override(c, "sim.network=r\xc3\xa9seau");  // "réseau": valid UTF-8, kept as a string
  EXPECT_EQ(c["sim"]["network"], "r\xc3\xa9seau");
}

TEST(ApplyOverride, RejectsMalformedAssignments) {
  nlohmann::json c = nlohmann::json::object();
  EXPECT_NE(error_of([&] { apply_override(c, "novalue"); }).find("expected key=value"), std::string::npos);
  EXPECT_NE(error_of([&] { apply_override(c, "a..b=1"); }).find("empty key segment"), std::string::npos);
  c["n"] = 3;
  EXPECT_NE(error_of([&] { apply_override(c, "n.x=1"); }).find("'x' is under a number"), std::string::npos);
}

TEST(LoadRunConfig, NamesTheFileOnMissingOrBrokenJson) {
  EXPECT_NE(error_of([] { load_run_config("/nonexistent/c.json"); }).find("/nonexistent/c.json: cannot open"),
            std::string::npos);
  std::string path = ::testing::TempDir() + "/broken.json";
  std::ofstream(path) << "{\n  \"cluster\": {,\n}";
  std::string e = error_of([&] { load_run_config(path); });
  EXPECT_NE(e.find(path + ": invalid JSON"), std::string::npos) << e;
  EXPECT_NE(e.find("line 2"), std::string::npos) << e;
}

// One host of 2 H100s serving a small model "m".
nlohmann::json small_config() {
  return nlohmann::json::parse(R"({
    "cluster": {
      "models": {"m": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16}},
      "hosts": [{"name": "h", "device": "H100", "gpus": 2, "instances": [{"model": "m", "count": 2}]}]
    }
  })");
}

TEST(ParseRunConfig, ProtectionIsOptionalWithDefaults) {
  RunConfig rc = parse_run_config(small_config(), "");
  EXPECT_EQ(rc.protection.health.heartbeat.interval_us, 100'000);
  EXPECT_EQ(rc.protection.retry.max_attempts, 3);
  EXPECT_EQ(rc.protection.shed, nlohmann::json("accept_all"));
}

TEST(ParseRunConfig, ReadsProtectionAndNamesItsKeysInErrors) {
  nlohmann::json c = small_config();
  c["protection"] = {{"request_timeout_ms", 2000}, {"retry", {{"max_attempts", 1}}}, {"shed", "priority_shed"}};
  RunConfig rc = parse_run_config(c, "");
  EXPECT_EQ(rc.protection.request_timeout_us, 2'000'000);
  EXPECT_EQ(rc.protection.retry.max_attempts, 1);
  EXPECT_EQ(rc.protection.shed, nlohmann::json("priority_shed"));
  apply_override(c, "protection.retry.jitter=1.5");
  EXPECT_EQ(error_of([&] { parse_run_config(c, "c.json"); }), "c.json: protection.retry.jitter: must be in [0, 1]");
}

}  // namespace
}  // namespace twinfer
