#include <set>

#include <gtest/gtest.h>

#include "core/cluster_config.h"

namespace twinfer {
namespace {

const DeviceProfile* find_builtin(const std::string& name) {
  for (const auto& d : builtin_device_profiles()) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

TEST(DeviceProfilesTest, AllBuiltinsPresentWithPlausibleNumbers) {
  std::set<std::string> names;
  for (const auto& d : builtin_device_profiles()) {
    SCOPED_TRACE(d.name);
    EXPECT_TRUE(names.insert(d.name).second) << "duplicate profile";
    EXPECT_GT(d.peak_tflops, 0);
    EXPECT_GT(d.mem_bandwidth_gbps, 0);
    EXPECT_GT(d.mem_gb, 0);
    EXPECT_GT(d.compute_efficiency, 0);
    EXPECT_LE(d.compute_efficiency, 1);
    EXPECT_GT(d.bandwidth_efficiency, 0);
    EXPECT_LE(d.bandwidth_efficiency, 1);
    EXPECT_GT(d.price_per_hour, 0);
  }
  EXPECT_EQ(names, (std::set<std::string>{"H100", "H200", "A100", "L4", "CPU"}));
}

TEST(DeviceProfilesTest, DatasheetFigures) {
  const DeviceProfile* h100 = find_builtin("H100");
  ASSERT_NE(h100, nullptr);
  EXPECT_DOUBLE_EQ(h100->peak_tflops, 989);
  EXPECT_DOUBLE_EQ(h100->mem_bandwidth_gbps, 3350);
  EXPECT_DOUBLE_EQ(h100->mem_gb, 80);
  const DeviceProfile* h200 = find_builtin("H200");
  ASSERT_NE(h200, nullptr);
  EXPECT_DOUBLE_EQ(h200->peak_tflops, 989);
  EXPECT_DOUBLE_EQ(h200->mem_bandwidth_gbps, 4800);
  EXPECT_DOUBLE_EQ(h200->mem_gb, 141);
  const DeviceProfile* a100 = find_builtin("A100");
  ASSERT_NE(a100, nullptr);
  EXPECT_DOUBLE_EQ(a100->peak_tflops, 312);
  EXPECT_DOUBLE_EQ(a100->mem_bandwidth_gbps, 2039);
  EXPECT_DOUBLE_EQ(a100->mem_gb, 80);
  const DeviceProfile* l4 = find_builtin("L4");
  ASSERT_NE(l4, nullptr);
  EXPECT_DOUBLE_EQ(l4->peak_tflops, 121);
  EXPECT_DOUBLE_EQ(l4->mem_bandwidth_gbps, 300);
  EXPECT_DOUBLE_EQ(l4->mem_gb, 24);
}

TEST(DeviceProfilesTest, CpuIsFarSlowerThanGpusAndCheaper) {
  const DeviceProfile* cpu = find_builtin("CPU");
  const DeviceProfile* l4 = find_builtin("L4");
  ASSERT_NE(cpu, nullptr);
  ASSERT_NE(l4, nullptr);
  EXPECT_LT(cpu->peak_tflops * 100, l4->peak_tflops);
  EXPECT_LT(cpu->mem_bandwidth_gbps, l4->mem_bandwidth_gbps);
  EXPECT_LT(cpu->price_per_hour, l4->price_per_hour);
}

TEST(DeviceProfilesTest, PricesFollowCapability) {
  EXPECT_LT(find_builtin("L4")->price_per_hour, find_builtin("A100")->price_per_hour);
  EXPECT_LT(find_builtin("A100")->price_per_hour, find_builtin("H100")->price_per_hour);
  EXPECT_LE(find_builtin("H100")->price_per_hour, find_builtin("H200")->price_per_hour);
}

}  // namespace
}  // namespace twinfer
