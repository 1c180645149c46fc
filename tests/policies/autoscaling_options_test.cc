#include "policies/elastic/autoscaling_options.h"

#include <functional>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::error_of;

TEST(ParseAutoscaling, NullMeansNoAutoscaling) {
  AutoscalingOptions o = parse_autoscaling(nlohmann::json(), "autoscaling");
  EXPECT_FALSE(o.enabled());
}

TEST(ParseAutoscaling, ReadsEveryKey) {
  AutoscalingOptions o = parse_autoscaling(nlohmann::json::parse(R"({
      "autoscaler": {"name": "queue_depth", "target_per_replica": 8}, "interval_s": 2.5,
      "min_replicas": 2, "max_replicas": 6, "initial_replicas": 3,
      "cold_start": {"startup_s": 4, "load_gbps": 8}})"), "autoscaling");
  EXPECT_TRUE(o.enabled());
  EXPECT_EQ(o.autoscaler["name"], "queue_depth");
  EXPECT_EQ(o.interval_us, 2'500'000);
  EXPECT_EQ(o.min_replicas, 2);
  EXPECT_EQ(o.max_replicas, 6);
  EXPECT_EQ(o.initial_replicas, 3);
  EXPECT_DOUBLE_EQ(o.cold_start.startup_s, 4);
  EXPECT_DOUBLE_EQ(o.cold_start.load_gbps, 8);
}

TEST(ParseAutoscaling, ErrorsNameTheKey) {
  auto parse = [](const char* text) { return [text] { parse_autoscaling(nlohmann::json::parse(text), "c.json: autoscaling"); }; };
  EXPECT_NE(error_of(parse(R"({"interval_s": 5})")).find("c.json: autoscaling.autoscaler: required"), std::string::npos);
  EXPECT_NE(error_of(parse(R"({"autoscaler": "x", "min_replicas": 0})")).find("autoscaling.min_replicas"), std::string::npos);
  EXPECT_NE(error_of(parse(R"({"autoscaler": "x", "min_replicas": 3, "max_replicas": 2})")).find("max_replicas"),
            std::string::npos);
  EXPECT_NE(error_of(parse(R"({"autoscaler": "x", "interval_s": 0})")).find("interval_s"), std::string::npos);
  EXPECT_NE(error_of(parse(R"({"autoscaler": "x", "cold_start": {"load_gbps": 0}})")).find("cold_start.load_gbps"),
            std::string::npos);
  EXPECT_NE(error_of(parse(R"({"autoscaler": "x", "intervl_s": 3})")).find("intervl_s"), std::string::npos);
  EXPECT_NE(error_of(parse(R"({"autoscaler": 3})")).find("autoscaling.autoscaler"), std::string::npos);
}

TEST(ColdStart, IsStartupPlusTheWeightShareOverTheLoadBandwidth) {
  InstanceSpec inst;
  inst.model = testing::test_model();
  inst.model.weights_bytes = 16e9;
  inst.gpus = {0, 1};  // tp 2: each GPU loads 8 GB
  ColdStartOptions c;
  c.startup_s = 5;
  c.load_gbps = 4;
  EXPECT_EQ(cold_start_us(c, inst), 7'000'000);  // 5 s + 8e9 / 4e9 s
}

}  // namespace
}  // namespace twinfer
