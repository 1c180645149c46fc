#include "serving/link_faults.h"

#include <gtest/gtest.h>

namespace twinfer {
namespace {

TEST(LinkFaults, AHealthyLinkDeliversAtOnce) {
  LinkFaults links(2, 1);
  EXPECT_EQ(links.delivery_us(0, LinkDirection::kToWorker, 1000), 1000);
  EXPECT_EQ(links.delivery_us(1, LinkDirection::kToRouter, 1500), 1500);
}

TEST(LinkFaults, LatencyDelaysEachMessageAndOrderIsKeptPerDirection) {
  LinkFaults links(2, 1);
  links.set_link(1, 5000, 0);
  EXPECT_EQ(links.delivery_us(1, LinkDirection::kToWorker, 100), 5100);
  links.set_link(1, 0, 0);  // healed: a later message may not overtake the delayed one
  EXPECT_EQ(links.delivery_us(1, LinkDirection::kToWorker, 200), 5100);
  EXPECT_EQ(links.delivery_us(1, LinkDirection::kToRouter, 200), 200) << "the other direction is independent";
  EXPECT_EQ(links.delivery_us(0, LinkDirection::kToWorker, 200), 200) << "other links are not affected";
}

TEST(LinkFaults, LostMessagesArriveAfterWholeRetransmissionTimeouts) {
  LinkFaults links(1, 7);
  links.set_link(0, 1000, 0.5);
  int resent = 0;
  TimeUs now = 0;
  for (int i = 0; i < 400; ++i) {
    now += 10'000'000;  // far apart, so that ordering never adds delay
    const TimeUs extra = links.delivery_us(0, LinkDirection::kToWorker, now) - now - 1000;
    ASSERT_GE(extra, 0);
    ASSERT_EQ(extra % kRetransmitTimeoutUs, 0);
    resent += extra > 0;
  }
  // Half the first sends are lost: 200 of 400 expected; a wide margin.
  EXPECT_GT(resent, 140);
  EXPECT_LT(resent, 260);
}

TEST(LinkFaults, PartitionIsAFlag) {
  LinkFaults links(2, 1);
  links.set_partitioned(1, true);
  EXPECT_TRUE(links.partitioned(1));
  EXPECT_FALSE(links.partitioned(0));
  links.set_partitioned(1, false);
  EXPECT_FALSE(links.partitioned(1));
}

}  // namespace
}  // namespace twinfer
