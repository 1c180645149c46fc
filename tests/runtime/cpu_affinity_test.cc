#include "runtime/engine/cpu_affinity.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace twinfer::runtime {
namespace {

TEST(CpuAffinity, ParsesCpulists) {
  EXPECT_EQ(parse_cpulist("0-3,8,10-11\n"), (std::vector<int>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpulist("5"), (std::vector<int>{5}));
  EXPECT_THROW(parse_cpulist("3-1"), Error);
  EXPECT_THROW(parse_cpulist("a-b"), Error);
}

TEST(CpuAffinity, WorkersAlternateNodesAndWrapAround) {
  std::vector<std::vector<int>> nodes{{0, 1}, {8, 9}};
  EXPECT_EQ(worker_cores(5, nodes), (std::vector<int>{0, 8, 1, 9, 0}));
  EXPECT_EQ(worker_cores(3, {{0, 1}}), (std::vector<int>{0, 1, 0}));
}

TEST(CpuAffinity, ThisHostHasAtLeastOneNodeWithCores) {
  auto nodes = numa_nodes();
  ASSERT_FALSE(nodes.empty());
  EXPECT_FALSE(nodes[0].empty());
  EXPECT_TRUE(pin_current_thread(nodes[0][0]));
}

}  // namespace
}  // namespace twinfer::runtime
