// The serve stack as a library object, in this process: spawned worker processes, the router, a
// replay through it, and a clean stop.
#include "runtime/rpc/serve_stack.h"

#include <signal.h>

#include <gtest/gtest.h>

#include "runtime/rpc/replay_client.h"
#include "tests/runtime/net_testing.h"
#include "tests/runtime/process_testing.h"
#include "tests/testing.h"

namespace twinfer::runtime {
namespace {

ServeStackOptions spawning(const std::string& config_name, std::vector<std::string> overrides = {}) {
  ServeStackOptions o;
  o.config_path = std::string(TWINFER_SOURCE_DIR) + "/configs/" + config_name;
  o.overrides = std::move(overrides);
  o.config = load_run_config(o.config_path, o.overrides);
  o.spawn_workers = true;
  o.binary = testing::twinfer_binary();
  o.router.listen = "127.0.0.1:0";
  o.router.log = false;
  return o;
}

Trace small_trace(int n) {
  Trace t;
  for (int i = 0; i < n; ++i) {
    Request r;
    r.id = RequestId(i);
    r.arrival_us = TimeUs(i) * 20'000;
    r.input_tokens = 16;
    r.output_tokens = 4;
    t.requests.push_back(r);
  }
  return t;
}

TEST(ServeStack, SpawnsItsWorkersServesAReplayAndStopsThemAll) {
  ServeStack stack(spawning("cpu_tiny.json"));
  ASSERT_TRUE(stack.spawned());
  ASSERT_EQ(stack.workers(), 2u);
  std::vector<pid_t> pids;
  for (int w = 0; w < 2; ++w) pids.push_back(stack.supervisor()->pid(w));
  for (pid_t p : pids) EXPECT_GT(p, 0);
  ReplayOptions ro;
  ro.fetch_batches = false;
  const ReplayRun run = replay_trace(small_trace(12), stack.router().address(), ro);
  ASSERT_EQ(run.results.size(), 12u);
  for (const ReplayedRequest& r : run.results) {
    EXPECT_EQ(r.outcome, Outcome::kCompleted) << r.id << ": " << r.reason;
    EXPECT_GE(r.worker, 0);
  }
  stack.stop();
  for (pid_t p : pids) EXPECT_NE(::kill(p, 0), 0) << "worker " << p << " still runs after stop()";
  stack.stop();  // idempotent
}

TEST(ServeStack, WhatTheRouterCannotCarryOutIsRefusedBeforeAnyWorkerStarts) {
  ServeStackOptions o = spawning("cpu_elastic.json");
  o.spawn_workers = false;
  o.workers = {"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"};
  EXPECT_NE(testing::error_of([&] { ServeStack stack(o); }).find("autoscaling needs a router that starts and stops"),
            std::string::npos);
  ServeStackOptions none = spawning("cpu_tiny.json");
  none.spawn_workers = false;
  EXPECT_NE(testing::error_of([&] { ServeStack stack(none); }).find("--spawn-workers is required"), std::string::npos);
}

}  // namespace
}  // namespace twinfer::runtime
