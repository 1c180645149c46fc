// Faults and protection in the embedded runtime: the router thread of run_embedded.
#include "runtime/engine/embedded_router.h"

#include <cmath>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "runtime/engine/embedded_runtime.h"
#include "tests/runtime/runtime_testing.h"

namespace twinfer::runtime {
namespace {

constexpr TimeUs kS = 1'000'000;

RunConfig three_workers(std::vector<std::string> overrides = {}) {
  overrides.insert(overrides.begin(), {"cluster.hosts.0.gpus=3", "cluster.hosts.0.instances.0.count=3"});
  return testing::cpu_tiny_config(overrides);
}

FaultScenario faults(const RunConfig& config, const nlohmann::json& list) {
  return parse_fault_scenario(nlohmann::json{{"faults", list}}, "test faults", config.cluster);
}

struct Outcomes {
  std::map<std::string, int> by_outcome;
  std::map<std::string, int> by_reason;
};

// Every request ended exactly once: the records all say so and the summary's counts add up.
Outcomes expect_all_ended(const nlohmann::json& s, const std::vector<RequestRecord>& records, std::size_t n) {
  Outcomes o;
  EXPECT_EQ(records.size(), n);
  for (const RequestRecord& r : records) {
    EXPECT_TRUE(r.ended) << "request " << r.id;
    ++o.by_outcome[outcome_name(r.outcome)];
    if (!r.reason.empty()) ++o.by_reason[r.reason];
  }
  const auto& q = s["requests"];
  EXPECT_EQ(q["total"].get<std::size_t>(), n);
  EXPECT_EQ(q["completed"].get<std::size_t>() + q["rejected"].get<std::size_t>() + q["dropped"].get<std::size_t>() +
                q["timed_out"].get<std::size_t>(),
            n);
  return o;
}

TimeUs applied_us(const nlohmann::json& s, std::size_t i) {
  return TimeUs(std::llround(s["faults"]["applied"][i]["applied_s"].get<double>() * 1e6));
}

bool has_transition(const nlohmann::json& s, int worker, const std::string& to, const std::string& why_part) {
  for (const auto& c : s["faults"]["health_changes"]) {
    if (c["worker"] == s["workers"][worker]["name"] && c["to"] == to && c["why"].get<std::string>().find(why_part) != std::string::npos) {
      return true;
    }
  }
  return false;
}

TEST(EmbeddedRouter, ACrashedWorkersRequestsAreRetriedElsewhereAndItRejoinsAfterRecovery) {
  RunConfig c = three_workers({"protection.retry.budget_min_retries=100"});
  // 90 requests over about 3 s, then 30 more from 6 s on, when the restarted worker has had time
  // to load its model (seconds on a busy machine).
  Trace t = testing::small_trace(90, 30, 5, 40);
  Trace tail = testing::small_trace(30, 30, 6, 40);
  for (Request r : tail.requests) {
    r.id += 90;
    r.arrival_us += 6 * kS;
    t.requests.push_back(r);
  }
  EmbeddedRunOptions opt;
  opt.faults = faults(c, {{{"at_s", 0.8}, {"type", "crash"}, {"worker", 1}, {"recover_after_s", 0.6}}});
  std::vector<RequestRecord> records;
  opt.records_out = &records;
  auto s = run_embedded(c, t, opt);
  Outcomes o = expect_all_ended(s, records, t.requests.size());
  EXPECT_EQ(o.by_outcome["completed"], int(t.requests.size())) << s["reasons"].dump() << s["faults"].dump();
  // How many requests the worker held when it died depends on this machine's speed; every one of
  // them is retried (the budget allows it) and completes elsewhere.
  EXPECT_GE(s["requests"]["retries"].get<int>(), s["faults"]["requests_lost_on_crash"].get<int>());
  int retried_completed = 0;
  for (const RequestRecord& r : records) retried_completed += r.attempts > 1 && r.outcome == Outcome::kCompleted;
  EXPECT_EQ(retried_completed, s["requests"]["retried"].get<int>());
  ASSERT_EQ(s["faults"]["applied"].size(), 3u);
  EXPECT_EQ(s["faults"]["applied"][2]["event"], "rejoined");
  const TimeUs crashed_us = applied_us(s, 0), recovered_us = applied_us(s, 2);
  int after_recovery = 0;
  for (const RequestRecord& r : records) {
    // Nothing completes on the dead worker while it is down.
    if (r.worker == 1 && r.outcome == Outcome::kCompleted) {
      EXPECT_TRUE(r.end_us <= crashed_us || r.start_us >= recovered_us) << "request " << r.id;
      after_recovery += r.start_us >= recovered_us;
    }
  }
  EXPECT_GT(after_recovery, 0) << "the recovered worker must serve again: " << s["faults"].dump();
  EXPECT_TRUE(has_transition(s, 1, "down", "crashed")) << s["faults"].dump();
  EXPECT_TRUE(has_transition(s, 1, "up", "")) << s["faults"].dump();
}

TEST(EmbeddedRouter, ASlowedWorkersStepsTakeLonger) {
  RunConfig c = testing::cpu_tiny_config({"policies.router=round_robin"});
  Trace t = testing::small_trace(40, 40, 3, 20);
  EmbeddedRunOptions opt;
  opt.faults = faults(c, {{{"at_s", 0}, {"type", "slowdown"}, {"worker", 0}, {"factor", 5}}});
  std::vector<RequestRecord> records;
  opt.records_out = &records;
  auto s = run_embedded(c, t, opt);
  Outcomes o = expect_all_ended(s, records, t.requests.size());
  EXPECT_EQ(o.by_outcome["completed"], int(t.requests.size()));
  auto mean_step_s = [&](int w) {
    const auto& worker = s["workers"][w];
    return worker["utilization"].get<double>() * s["run"]["wall_s"].get<double>() / worker["batches"].get<double>();
  };
  // Five times as long per step in theory (more with the bigger batches it accumulates).
  EXPECT_GT(mean_step_s(0) / mean_step_s(1), 2.0) << mean_step_s(0) << " s vs " << mean_step_s(1) << " s";
}

TEST(EmbeddedRouter, APartitionedWorkerGoesDownAndItsRequestsAreRetried) {
  RunConfig c = three_workers({"protection.heartbeat.interval_ms=20", "protection.heartbeat.suspect_after_misses=2",
                               "protection.heartbeat.down_after_misses=4",
                               "protection.retry.budget_min_retries=100"});
  // Long answers (up to 400 tokens) on a worker 0 that runs ten times slower than the others, so
  // that it holds requests when the partition starts however fast this machine is (on a quiet
  // machine at full speed it could be idle then, with nothing to retry).
  Trace t = testing::small_trace(60, 30, 7, 200);
  EmbeddedRunOptions opt;
  opt.faults = faults(c, {{{"at_s", 0}, {"type", "slowdown"}, {"worker", 0}, {"factor", 10}},
                          {{"at_s", 0.5}, {"type", "partition"}, {"worker", 0}, {"duration_s", 0.8}}});
  std::vector<RequestRecord> records;
  opt.records_out = &records;
  auto s = run_embedded(c, t, opt);
  Outcomes o = expect_all_ended(s, records, t.requests.size());
  EXPECT_EQ(o.by_outcome["completed"], int(t.requests.size())) << s["reasons"].dump();
  EXPECT_TRUE(has_transition(s, 0, "suspect", "")) << s["faults"].dump();
  EXPECT_TRUE(has_transition(s, 0, "down", "")) << s["faults"].dump();
  EXPECT_GT(s["requests"]["retries"].get<int>(), 0);
  EXPECT_GT(s["requests"]["retried"].get<int>(), 0);
  // A request that was retried completed on another worker while the partition lasted or later;
  // none completed on worker 0 from the partition until it healed.
  ASSERT_EQ(s["faults"]["applied"].size(), 3u) << s["faults"].dump();  // the slowdown, the partition, its end
  const TimeUs partitioned_us = applied_us(s, 1);
  const TimeUs healed_us = applied_us(s, 2);
  EXPECT_EQ(s["faults"]["applied"][1]["event"], "start");
  EXPECT_EQ(s["faults"]["applied"][2]["event"], "end");
  EXPECT_EQ(s["faults"]["applied"][2]["type"], "partition");
  for (const RequestRecord& r : records) {
    if (r.worker != 0) continue;
    EXPECT_TRUE(r.end_us <= partitioned_us || r.end_us >= healed_us) << "request " << r.id;
  }
}

TEST(EmbeddedRouter, RequestTimeoutEndsRequestsTimedOutAndFreesTheirWorker) {
  RunConfig c = testing::cpu_tiny_config(
      {"cluster.hosts.0.gpus=1", "cluster.hosts.0.instances.0.count=1", "protection.request_timeout_ms=300"});
  // 12 long requests at time 0 on a slowed worker cannot finish in 300 ms; 4 short ones at 1 s
  // find the worker free again (their long predecessors were cancelled) and complete.
  Trace t = testing::small_trace(16, 1000, 3, 20);
  for (std::size_t i = 0; i < t.requests.size(); ++i) {
    Request& r = t.requests[i];
    r.arrival_us = i < 12 ? TimeUs(i) : kS + TimeUs(i);
    r.output_tokens = i < 12 ? 200 : 2;
  }
  EmbeddedRunOptions opt;
  opt.faults = faults(c, {{{"at_s", 0}, {"type", "slowdown"}, {"worker", 0}, {"factor", 4}, {"duration_s", 0.9}}});
  std::vector<RequestRecord> records;
  opt.records_out = &records;
  auto s = run_embedded(c, t, opt);
  Outcomes o = expect_all_ended(s, records, t.requests.size());
  EXPECT_EQ(o.by_outcome["timed_out"], 12);
  EXPECT_EQ(o.by_reason["no answer within 300 ms"], 12);
  for (std::size_t i = 0; i < 12; ++i) EXPECT_EQ(records[i].end_us, records[i].arrival_us + 300'000);
  for (std::size_t i = 12; i < 16; ++i) EXPECT_EQ(records[i].outcome, Outcome::kCompleted) << "request " << i;
}

TEST(EmbeddedRouter, RouterRestartDropsWhatWasInFlightAndRejectsArrivalsWhileDown) {
  RunConfig c = testing::cpu_tiny_config();
  Trace t = testing::small_trace(60, 30, 11, 40);
  EmbeddedRunOptions opt;
  opt.faults = faults(c, {{{"at_s", 1.0}, {"type", "router_restart"}, {"downtime_s", 0.4}}});
  std::vector<RequestRecord> records;
  opt.records_out = &records;
  auto s = run_embedded(c, t, opt);
  Outcomes o = expect_all_ended(s, records, t.requests.size());
  const TimeUs restarted_us = applied_us(s, 0);
  int in_flight = 0, during = 0;
  for (const RequestRecord& r : records) {
    if (r.arrival_us < kS) {
      // Ended before the restart, or dropped by it.
      if (r.outcome == Outcome::kCompleted) {
        EXPECT_LE(r.end_us, restarted_us) << "request " << r.id;
        continue;
      }
      ++in_flight;
      EXPECT_EQ(r.outcome, Outcome::kDropped) << "request " << r.id;
      EXPECT_EQ(r.reason, "router restarted");
      EXPECT_EQ(r.end_us, restarted_us);
    } else if (r.arrival_us < kS + 400'000) {
      ++during;
      EXPECT_EQ(r.outcome, Outcome::kRejected) << "request " << r.id;
      EXPECT_EQ(r.reason, "router unavailable");
    } else {
      EXPECT_EQ(r.outcome, Outcome::kCompleted) << "request " << r.id;
    }
  }
  EXPECT_GT(during, 0);  // (how many were in flight at the restart depends on this machine's speed)
  EXPECT_EQ(o.by_reason["router restarted"], in_flight);
  EXPECT_EQ(o.by_reason["router unavailable"], during);
}

}  // namespace
}  // namespace twinfer::runtime
