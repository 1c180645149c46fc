#include "runtime/rpc/worker_supervisor.h"

#include <signal.h>

#include <chrono>
#include <set>
#include <thread>

#include <gtest/gtest.h>

namespace twinfer::runtime {
namespace {

using Clock = std::chrono::steady_clock;

// Waits up to `seconds` for worker w's pid to differ from `old` and be running; returns it.
pid_t wait_new_pid(const WorkerSupervisor& s, int w, pid_t old, double seconds) {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < until) {
    const pid_t p = s.pid(w);
    if (p > 0 && p != old) return p;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return s.pid(w);
}

SupervisorOptions sleepers(int n, double restart_after_s) {
  SupervisorOptions o;
  o.binary = "/bin/sleep";
  for (int i = 0; i < n; ++i) o.args.push_back({"60"});
  o.restart_after_s = restart_after_s;
  o.stop_timeout_s = 5;
  o.log = false;
  return o;
}

TEST(WorkerSupervisor, AChildKilledFromOutsideIsStartedAgainAfterTheDelay) {
  WorkerSupervisor s(sleepers(2, 0.3));
  s.start();
  const pid_t first = s.pid(1);
  ASSERT_GT(first, 0);
  EXPECT_NE(s.pid(0), first);
  const auto killed = Clock::now();
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  const pid_t second = wait_new_pid(s, 1, first, 5);
  const double took_s = std::chrono::duration<double>(Clock::now() - killed).count();
  EXPECT_NE(second, first);
  EXPECT_GT(second, 0);
  EXPECT_GE(took_s, 0.3);
  EXPECT_EQ(s.restarts(1), 1);
  EXPECT_EQ(s.restarts(0), 0);
  s.stop();
  EXPECT_EQ(s.pid(0), -1);
  EXPECT_EQ(s.pid(1), -1);
  EXPECT_NE(::kill(second, 0), 0) << "stopped and reaped";
}

// Elastic pools: a retired child runs only between launch() and retire(), is not restarted when it
// exits meanwhile, and crash faults leave it alone.
TEST(WorkerSupervisor, ARetiredChildRunsOnlyOnceLaunchedAndStopsForGoodWhenRetired) {
  SupervisorOptions o = sleepers(2, 0.05);
  o.start_retired = {false, true};
  WorkerSupervisor s(o);
  s.start();
  EXPECT_GT(s.pid(0), 0);
  EXPECT_EQ(s.pid(1), -1);
  s.crash(1);  // not running: nothing to crash, and no recovery starts it
  s.recover(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(s.pid(1), -1);
  s.launch(1, "its pool scaled up");
  const pid_t launched = wait_new_pid(s, 1, -1, 5);
  ASSERT_GT(launched, 0);
  s.retire(1);
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (s.pid(1) != -1 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(s.pid(1), -1) << "retired: stopped and reaped";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // past the restart delay
  EXPECT_EQ(s.pid(1), -1) << "a retired child is not restarted";
  EXPECT_EQ(s.restarts(1), 0);
  EXPECT_GT(s.pid(0), 0);
  s.stop();
}

TEST(WorkerSupervisor, ACrashHoldsTheChildDownUntilRecovery) {
  WorkerSupervisor s(sleepers(1, 0.05));
  s.start();
  const pid_t first = s.pid(0);
  s.crash(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(s.pid(0), -1) << "not restarted while the crash lasts";
  s.recover(0);
  EXPECT_GT(wait_new_pid(s, 0, first, 5), 0);
  EXPECT_EQ(s.restarts(0), 1);
}

TEST(WorkerSupervisor, FreeLoopbackPortsAreDistinct) {
  std::vector<int> ports = free_loopback_ports(5);
  EXPECT_EQ(std::set<int>(ports.begin(), ports.end()).size(), 5u);
  for (int p : ports) EXPECT_GT(p, 0);
  EXPECT_NE(self_executable().find("runtime_tests"), std::string::npos);
}

}  // namespace
}  // namespace twinfer::runtime
