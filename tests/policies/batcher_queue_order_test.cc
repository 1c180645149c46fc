#include "policies/batchers/batcher_queue_order.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;

QueueOrder read(const nlohmann::json& spec) {
  JsonParams p(spec, "b");
  QueueOrder order = QueueOrder::kFcfs;
  read_queue_order(p, "order", order);
  p.done();
  return order;
}

TEST(BatcherQueueOrderTest, ReadsTheThreeOrders) {
  EXPECT_EQ(read(nlohmann::json::object()), QueueOrder::kFcfs);
  EXPECT_EQ(read({{"order", "fcfs"}}), QueueOrder::kFcfs);
  EXPECT_EQ(read({{"order", "sjf"}}), QueueOrder::kSjf);
  EXPECT_EQ(read({{"order", "priority"}}), QueueOrder::kPriority);
  EXPECT_THROW(read({{"order", "random"}}), Error);
}

TEST(BatcherQueueOrderTest, RanksSmallerFirst) {
  QueueRanker fcfs(QueueOrder::kFcfs, 0);
  EXPECT_EQ(fcfs.rank(make_request(1, 0, 100, 5)), fcfs.rank(make_request(2, 0, 1, 1)));

  QueueRanker sjf(QueueOrder::kSjf, 0);
  EXPECT_EQ(sjf.rank(make_request(1, 0, 100, 5)), 105);

  testing::FakeCostModel cost;
  testing::ViewBuilder views;
  views.add_worker(testing::test_device("HALF", 50));
  QueueRanker sjf_cost(QueueOrder::kSjf, 0, &cost, &views.instance(0));
  // (1000 + 10 * 100 + 100 * 5) * 100 / 50 TFLOPS.
  EXPECT_EQ(sjf_cost.rank(make_request(1, 0, 100, 5)), 5000);

  QueueRanker priority(QueueOrder::kPriority, 0);
  EXPECT_EQ(priority.rank(make_request(1, 0, 1, 1, "", 7)), -7);
  EXPECT_LT(priority.rank(make_request(1, 0, 1, 1, "", 7)), priority.rank(make_request(2, 0, 1, 1, "", 2)));
}

TEST(BatcherQueueOrderTest, PriorityLevelsClamp) {
  QueueRanker three(QueueOrder::kPriority, 3);
  EXPECT_EQ(three.level(make_request(1, 0, 1, 1, "", -4)), 0);
  EXPECT_EQ(three.level(make_request(1, 0, 1, 1, "", 1)), 1);
  EXPECT_EQ(three.level(make_request(1, 0, 1, 1, "", 9)), 2);
  QueueRanker unlimited(QueueOrder::kPriority, 0);
  EXPECT_EQ(unlimited.level(make_request(1, 0, 1, 1, "", 9)), 9);
}

}  // namespace
}  // namespace twinfer
