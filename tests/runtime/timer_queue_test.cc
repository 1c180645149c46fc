#include "runtime/rpc/timer_queue.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/rpc/wire.h"

namespace twinfer::runtime {
namespace {

TEST(TimerQueue, RunsActionsInTimeOrderNotBefore) {
  TimerQueue q;
  std::mutex mu;
  std::vector<int> order;
  std::vector<TimeUs> late;
  const TimeUs now = monotonic_now_us();
  for (int i : {3, 1, 2}) {
    const TimeUs at = now + i * 30'000;
    q.at(at, [&, i, at] {
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
      late.push_back(monotonic_now_us() - at);
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
  for (TimeUs l : late) EXPECT_GE(l, 0);
}

TEST(TimerQueue, PastTimesRunAtOnceAndActionsMayAddMore) {
  TimerQueue q;
  std::atomic<int> ran{0};
  q.at(0, [&] {
    ++ran;
    q.at(0, [&] { ++ran; });
  });
  for (int i = 0; i < 100 && ran < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(ran, 2);
}

TEST(TimerQueue, StopDropsWhatIsPending) {
  std::atomic<int> ran{0};
  TimerQueue q;
  q.at(monotonic_now_us() + 10'000'000, [&] { ++ran; });
  EXPECT_EQ(q.pending(), 1u);
  q.stop();
  EXPECT_EQ(q.pending(), 0u);
  q.at(0, [&] { ++ran; });  // ignored after stop
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(ran, 0);
}

}  // namespace
}  // namespace twinfer::runtime
