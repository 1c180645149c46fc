// Elastic pools and model versions in the embedded runtime: real worker threads on the CPU model.
// Wall-clock runs: the assertions are about structure (who served what, in which lifecycle state,
// after which load), never about counts that depend on this machine's speed.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/json_file.h"
#include "runtime/engine/embedded_runtime.h"
#include "tests/runtime/runtime_testing.h"
#include "tests/testing.h"

namespace twinfer::runtime {
namespace {

using testing::phases;

constexpr TimeUs kS = 1'000'000;
constexpr TimeUs kColdStartUs = 300'000;  // configs/cpu_elastic.json: startup_s 0.3, loading ~free


std::string out_dir(const std::string& name) {
  return ::testing::TempDir() + "/twinfer_embedded_elastic_" + name + "_" + std::to_string(::getpid());
}

void expect_all_completed(const nlohmann::json& s, const std::vector<RequestRecord>& records, std::size_t n) {
  ASSERT_EQ(records.size(), n);
  for (const RequestRecord& r : records) {
    EXPECT_TRUE(r.ended) << "request " << r.id;
    EXPECT_EQ(r.outcome, Outcome::kCompleted) << "request " << r.id << ": " << r.reason;
  }
  EXPECT_EQ(s["requests"]["completed"].get<std::size_t>(), n) << s["reasons"].dump();
}

// A run of `t` whose outputs go to out_dir(name), with every request's record; checks that every
// request completed.
struct RecordedRun {
  nlohmann::json summary;
  std::vector<RequestRecord> records;
  std::string dir;
};

RecordedRun run_recorded(const RunConfig& c, const Trace& t, const std::string& name) {
  RecordedRun run;
  EmbeddedRunOptions opt;
  opt.out_dir = run.dir = out_dir(name);
  opt.records_out = &run.records;
  run.summary = run_embedded(c, t, opt);
  expect_all_completed(run.summary, run.records, t.requests.size());
  return run;
}

// One worker's lifecycle changes, from the timeline's markers, in time order.
struct Change {
  TimeUs at_us = 0;
  std::string to;  // "starting", "ready", "draining", "stopped"
};

std::map<int, std::vector<Change>> lifecycle_changes(const std::string& dir, int workers) {
  nlohmann::json timeline = read_json_file(dir + "/timeline.json", "timeline");
  std::map<int, std::vector<Change>> out;
  for (const auto& e : timeline["traceEvents"]) {
    if (e.value("ph", "") != "i") continue;
    const std::string name = e["name"];
    const int tid = e["tid"];
    if (tid >= workers || (name != "starting" && name != "ready" && name != "draining" && name != "stopped")) continue;
    out[tid].push_back({e["ts"].get<TimeUs>(), name});
  }
  return out;
}

// When worker w changed to `to`, in time order (none when it never did).
std::vector<TimeUs> change_times(const std::map<int, std::vector<Change>>& lifecycles, int w, const std::string& to) {
  std::vector<TimeUs> out;
  auto it = lifecycles.find(w);
  if (it == lifecycles.end()) return out;
  for (const Change& ch : it->second) {
    if (ch.to == to) out.push_back(ch.at_us);
  }
  return out;
}

// The state of a worker at `t` (its latest change at or before t), `initial` before any.
std::string state_at(const std::vector<Change>& changes, TimeUs t, const std::string& initial) {
  std::string state = initial;
  for (const Change& c : changes) {
    if (c.at_us > t) break;
    state = c.to;
  }
  return state;
}

// Replicas (ready + starting) of a pool at t, from summary.json's series.
int replicas_at(const nlohmann::json& pool, double t) {
  const auto& r = pool["replicas"];
  int n = 0;
  for (std::size_t k = 0; k < r["t_s"].size() && r["t_s"][k].get<double>() <= t; ++k) {
    n = r["ready"][k].get<int>() + r["starting"][k].get<int>();
  }
  return n;
}

TEST(EmbeddedElastic, ALoadStepStartsWorkersAfterTheirColdStartAndStopsThemAfterIt) {
  RunConfig c = testing::cpu_config("cpu_elastic.json");
  // 1 s quiet, a 1 s burst, 6 s quiet. 64 tokens per answer take at least 64 decode steps, so
  // that the burst keeps more than 2 requests per replica outstanding even on a fast machine;
  // on a slow one the quiet tail leaves time for the backlog to clear and the scale-down window
  // (1 s) to pass.
  Trace t = phases({{1, 5}, {1, 100}, {6, 5}}, 64);
  const RecordedRun run = run_recorded(c, t, "step");
  const nlohmann::json& s = run.summary;
  const std::vector<RequestRecord>& records = run.records;

  // Replicas rose after the load step and fell after it.
  const auto& pool = s["autoscaling"]["pools"][0];
  EXPECT_EQ(replicas_at(pool, 0.95), 1) << pool.dump();
  EXPECT_GE(pool["peak_replicas"].get<int>(), 2) << pool.dump();
  EXPECT_GE(pool["scale_ups"].get<int>(), 1);
  EXPECT_GE(pool["scale_downs"].get<int>(), 1) << pool.dump();
  const auto& series = pool["replicas"];
  const std::size_t last = series["t_s"].size() - 1;
  EXPECT_LT(series["ready"][last].get<int>() + series["starting"][last].get<int>(), pool["peak_replicas"].get<int>())
      << pool.dump();

  // Only worker 0 was built before the run; every other load is a cold start, one per start.
  const auto lifecycles = lifecycle_changes(run.dir, 3);
  std::map<int, std::vector<nlohmann::json>> cold_starts;
  int initial = 0;
  for (const auto& load : s["run"]["loads"]) {
    if (load["why"] == "initial") {
      EXPECT_EQ(load["worker"], 0);
      ++initial;
    } else {
      ASSERT_EQ(load["why"], "cold_start") << load.dump();
      cold_starts[load["worker"].get<int>()].push_back(load);
    }
  }
  EXPECT_EQ(initial, 1);
  EXPECT_FALSE(cold_starts.empty());
  for (int w = 0; w < 3; ++w) {
    const std::vector<TimeUs> starts = change_times(lifecycles, w, "starting");
    ASSERT_EQ(cold_starts[w].size(), starts.size()) << "worker " << w << ": one real load per start";
    for (std::size_t k = 0; k < starts.size(); ++k) {
      const auto& load = cold_starts[w][k];
      EXPECT_GE(us_from_s(load["begun_s"].get<double>()), starts[k]) << load.dump();
      EXPECT_GE(starts[k], kS) << "worker " << w << " started before the load step";
      if (load.contains("ready_s")) {
        EXPECT_GE(us_from_s(load["ready_s"].get<double>()) - starts[k], kColdStartUs - 1) << load.dump();
        EXPECT_GE(load["ready_s"].get<double>(), load["loaded_s"].get<double>()) << load.dump();
      }
    }
  }

  // Each worker's requests: none started while it was stopped or starting (a started worker served
  // nothing before its cold start elapsed), and none arrived after it began draining unless it
  // became ready again before the request started there.
  for (const RequestRecord& r : records) {
    const std::vector<Change> none;
    auto it = lifecycles.find(r.worker);
    const std::vector<Change>& changes = it == lifecycles.end() ? none : it->second;
    const std::string initial_state = r.worker == 0 ? "ready" : "stopped";
    const std::string at_start = state_at(changes, r.start_us, initial_state);
    EXPECT_TRUE(at_start == "ready" || at_start == "draining")
        << "request " << r.id << " started on worker " << r.worker << " while " << at_start;
    const std::string at_arrival = state_at(changes, r.arrival_us - 1, initial_state);
    if (at_arrival == "draining" || at_arrival == "stopped") {
      TimeUs ready_again = kNever;
      for (const Change& ch : changes) {
        if (ch.at_us >= r.arrival_us && ch.to == "ready") {
          ready_again = ch.at_us;
          break;
        }
      }
      EXPECT_GE(r.start_us, ready_again) << "request " << r.id << " routed to worker " << r.worker << " while "
                                         << at_arrival;
    }
  }
  // A scaled-down worker was really stopped: a "stopped" change after a "draining" one.
  bool stopped_after_drain = false;
  for (const auto& [w, changes] : lifecycles) {
    for (std::size_t k = 1; k < changes.size(); ++k) {
      stopped_after_drain |= changes[k - 1].to == "draining" && changes[k].to == "stopped";
    }
  }
  EXPECT_TRUE(stopped_after_drain);
  EXPECT_GT(s["cost"]["gpu_hours"].get<double>(), 0.0);
}

TEST(EmbeddedElastic, ADrainingWorkerFinishesWhatItHoldsThenStops) {
  // All 3 replicas ready at 0; a steady load that one replica can hold (20 outstanding per replica
  // wanted) scales the pool down at 1.25 s, the first decision whose 1 s window no longer holds the
  // initial size (decisions are dated on the 0.25 s grid). Three long requests arrive at that very
  // time; arrivals go before decisions, and round robin gives one to each worker: both workers
  // that drain hold one then, whatever this machine's speed.
  RunConfig c = testing::cpu_config("cpu_elastic.json", {"autoscaling.initial_replicas=3",
                                                        "autoscaling.autoscaler.target_per_replica=20",
                                                        "policies.router=round_robin"});
  Trace t = phases({{3, 8}}, 100);
  for (int k = 0; k < 3; ++k) {
    Request r;
    r.arrival_us = 1'250'000;
    r.input_tokens = 32;
    r.output_tokens = 200;
    t.requests.push_back(r);
  }
  std::stable_sort(t.requests.begin(), t.requests.end(),
                   [](const Request& a, const Request& b) { return a.arrival_us < b.arrival_us; });
  for (std::size_t i = 0; i < t.requests.size(); ++i) t.requests[i].id = i;
  const RecordedRun run = run_recorded(c, t, "drain");
  const nlohmann::json& s = run.summary;
  const std::vector<RequestRecord>& records = run.records;
  const auto& pool = s["autoscaling"]["pools"][0];
  EXPECT_GE(pool["scale_downs"].get<int>(), 1) << pool.dump();
  const auto lifecycles = lifecycle_changes(run.dir, 3);
  int stopped = 0, held_when_drained = 0;
  for (const auto& [w, changes] : lifecycles) {
    for (std::size_t k = 0; k < changes.size(); ++k) {
      if (changes[k].to != "draining") continue;
      const TimeUs draining_at = changes[k].at_us;
      const bool resumed = k + 1 < changes.size() && changes[k + 1].to == "ready";
      if (resumed) continue;  // it took requests again from then on
      const TimeUs stopped_at = k + 1 < changes.size() ? changes[k + 1].at_us : kNever;
      if (stopped_at != kNever) {
        EXPECT_EQ(changes[k + 1].to, "stopped");
        ++stopped;
      }
      EXPECT_EQ(draining_at, 1'250'000) << "worker " << w;
      for (const RequestRecord& r : records) {
        if (r.worker != w || r.start_us > stopped_at) continue;
        EXPECT_LE(r.arrival_us, draining_at) << "request " << r.id << " routed to worker " << w << " while draining";
        EXPECT_LE(r.end_us, stopped_at) << "request " << r.id << " ended on worker " << w << " after it stopped";
        held_when_drained += r.end_us > draining_at;
      }
    }
  }
  EXPECT_EQ(stopped, 2) << pool.dump();
  EXPECT_GE(held_when_drained, 2);
}

TEST(EmbeddedElastic, ACanaryScheduleMovesTrafficToTheNewVersionUnderLoad) {
  RunConfig c = testing::cpu_config("cpu_canary.json");
  // 0-1 s all on v1, 1-2 s 10 % on v2, 2-3 s 50 %, from 3 s all on v2 (see the config).
  Trace t = phases({{4, 40}}, 16, "tiny");
  for (Request& r : t.requests) r.session = "s" + std::to_string(r.id % 97);
  EmbeddedRunOptions opt;
  std::vector<RequestRecord> records;
  opt.records_out = &records;
  auto s = run_embedded(c, t, opt);
  expect_all_completed(s, records, t.requests.size());
  std::map<int, std::map<int, int>> per_phase;  // second -> worker (0: tiny-v1, 1: tiny-v2) -> requests
  for (const RequestRecord& r : records) per_phase[int(r.arrival_us / kS)][r.worker]++;
  EXPECT_EQ(per_phase[0][1], 0);
  EXPECT_EQ(per_phase[0][0], 40);
  EXPECT_EQ(per_phase[3][0], 0);
  EXPECT_EQ(per_phase[3][1], 40);
  EXPECT_GT(per_phase[2][0], 0);  // half the sessions each way: 40 requests all one way is
  EXPECT_GT(per_phase[2][1], 0);  // out of reach
  EXPECT_LT(per_phase[1][1], per_phase[2][1]);
  ASSERT_TRUE(s.contains("models")) << s.dump();
  const int v1 = s["models"]["tiny-v1"]["requests"]["completed"], v2 = s["models"]["tiny-v2"]["requests"]["completed"];
  EXPECT_EQ(std::size_t(v1 + v2), t.requests.size());
  EXPECT_EQ(v1, per_phase[0][0] + per_phase[1][0] + per_phase[2][0]);
}

// configs/cpu_hot_swap.json: tiny-v1 on workers 0 and 1 serves everything until 2 s, then the
// split gives everything to tiny-v2 (workers 2 and 3), which is not loaded at the start. Decisions
// every 0.25 s and a 0.3 s cold start: tiny-v2 starts at 1.5 s on loader threads, both replicas
// (as many as tiny-v1 has), and tiny-v1 drains to zero once tiny-v2 serves.
TEST(EmbeddedElastic, AHotSwapLoadsTheNewVersionMovesTheTrafficAndRetiresTheOldWithoutAFailure) {
  RunConfig c = testing::cpu_config("cpu_hot_swap.json");
  const TimeUs switch_us = 2 * kS;
  Trace t = phases({{4, 40}}, 16, "tiny");
  const RecordedRun run = run_recorded(c, t, "hot_swap");
  const nlohmann::json& s = run.summary;
  const auto lifecycles = lifecycle_changes(run.dir, 4);

  // Only tiny-v1 was built before the run; tiny-v2's replicas were loaded during it, started a
  // cold start and a decision ahead of the switch.
  std::map<int, int> loads;
  for (const auto& load : s["run"]["loads"]) {
    const int w = load["worker"];
    EXPECT_EQ(load["why"], w < 2 ? "initial" : "cold_start") << load.dump();
    ++loads[w];
  }
  EXPECT_EQ(loads, (std::map<int, int>{{0, 1}, {1, 1}, {2, 1}, {3, 1}}));
  TimeUs v2_ready = kNever;
  for (int w = 2; w < 4; ++w) {
    const std::vector<TimeUs> starts = change_times(lifecycles, w, "starting");
    ASSERT_EQ(starts.size(), 1u) << "worker " << w;
    EXPECT_EQ(starts[0], 3 * kS / 2) << "worker " << w;  // the decision dated 1.5 s
    const std::vector<TimeUs> ready = change_times(lifecycles, w, "ready");
    ASSERT_EQ(ready.size(), 1u) << "worker " << w;
    EXPECT_GE(ready[0], starts[0] + kColdStartUs - 1);
    v2_ready = std::min(v2_ready, ready[0]);
  }
  // Before the switch everything went to tiny-v1; after it, once tiny-v2 served, everything went
  // to tiny-v2. Between the switch and tiny-v2's first ready worker (only on a machine slower than
  // the modeled cold start) tiny-v1 kept the traffic.
  std::map<int, TimeUs> last_end;
  int on_v2 = 0;
  for (const RequestRecord& r : run.records) {
    if (r.arrival_us < switch_us) {
      EXPECT_LT(r.worker, 2) << "request " << r.id;
    }
    if (r.arrival_us >= switch_us && r.arrival_us >= v2_ready) {
      EXPECT_GE(r.worker, 2) << "request " << r.id;
    }
    on_v2 += r.worker >= 2;
    last_end[r.worker] = std::max(last_end[r.worker], r.end_us);
  }
  EXPECT_GT(on_v2, 0);
  // tiny-v1 retired: each of its workers drained and stopped after its last request ended.
  for (int w = 0; w < 2; ++w) {
    const std::vector<TimeUs> stopped = change_times(lifecycles, w, "stopped");
    ASSERT_EQ(stopped.size(), 1u) << "worker " << w;
    EXPECT_GE(stopped[0], last_end[w]) << "worker " << w;
    EXPECT_GE(stopped[0], switch_us) << "worker " << w;
  }
  const auto& pools = s["autoscaling"]["pools"];
  EXPECT_EQ(pools[0]["model"], "tiny-v1");
  EXPECT_EQ(pools[0]["replicas"]["ready"].back(), 0);
  EXPECT_EQ(pools[1]["replicas"]["ready"].back(), 2);
  const int v1 = s["models"]["tiny-v1"]["requests"]["completed"], v2 = s["models"]["tiny-v2"]["requests"]["completed"];
  EXPECT_EQ(v2, on_v2);
  EXPECT_EQ(std::size_t(v1 + v2), t.requests.size());
}

// A burst over the first decision outnumbers one replica's target however fast or slow this
// machine is (each request takes 64 decode steps, so those of the last few ms are still there): the
// pool starts workers, each on a loader thread while the router goes on serving, and none serves
// before its load and its modeled cold start are both done. The sanitizer builds run this one.
TEST(EmbeddedElastic, ABurstColdStartsWorkersOnLoaderThreadsWhileTheRouterServes) {
  // Round robin: once a started worker is ready, the trickle after the burst reaches it.
  RunConfig c = testing::cpu_config("cpu_elastic.json", {"autoscaling.autoscaler.target_per_replica=1",
                                                        "policies.router=round_robin"});
  Trace t = phases({{0.4, 100}, {3, 4}}, 64);
  const RecordedRun run = run_recorded(c, t, "burst");
  const nlohmann::json& s = run.summary;
  const std::vector<RequestRecord>& records = run.records;
  const auto& pool = s["autoscaling"]["pools"][0];
  EXPECT_GE(pool["scale_ups"].get<int>(), 1) << pool.dump();
  EXPECT_GE(pool["peak_replicas"].get<int>(), 2) << pool.dump();

  const auto lifecycles = lifecycle_changes(run.dir, 3);
  std::map<int, TimeUs> ready_at;  // each started worker's first "ready"
  for (const auto& [w, changes] : lifecycles) {
    for (const Change& ch : changes) {
      if (ch.to == "ready" && !ready_at.count(w)) ready_at[w] = ch.at_us;
    }
  }
  // The k-th cold start of a worker goes with its k-th "starting" change (dated at its decision,
  // from which the modeled cold start runs; the load itself begins when the router gets to it).
  std::map<int, std::size_t> starts_seen;
  int cold_starts = 0;
  for (const auto& load : s["run"]["loads"]) {
    if (load["why"] != "cold_start") continue;
    const int w = load["worker"];
    EXPECT_NE(w, 0) << load.dump();
    const std::vector<TimeUs> starting = change_times(lifecycles, w, "starting");
    const std::size_t k = starts_seen[w]++;
    ASSERT_LT(k, starting.size()) << "worker " << w << ": a load without a start";
    EXPECT_GE(us_from_s(load["begun_s"].get<double>()), starting[k]) << load.dump();
    if (!load.contains("ready_s")) continue;  // the run ended while it loaded
    ++cold_starts;
    EXPECT_GE(load["loaded_s"].get<double>(), load["begun_s"].get<double>()) << load.dump();
    EXPECT_GE(load["ready_s"].get<double>(), load["loaded_s"].get<double>()) << load.dump();
    EXPECT_GE(us_from_s(load["ready_s"].get<double>()) - starting[k], kColdStartUs - 1) << load.dump();
    ASSERT_TRUE(ready_at.count(w)) << "worker " << w << " has no ready marker";
  }
  EXPECT_GE(cold_starts, 1) << s["run"]["loads"].dump();
  int served_by_started = 0;
  for (const RequestRecord& r : records) {
    if (r.worker == 0) continue;
    ++served_by_started;
    ASSERT_TRUE(ready_at.count(r.worker)) << "request " << r.id << " on worker " << r.worker;
    EXPECT_GE(r.start_us, ready_at[r.worker]) << "request " << r.id << " started before worker " << r.worker
                                              << " was ready";
  }
  // Round robin over the ready workers: of two requests arriving once a started worker is ready,
  // one goes to it. (Where loading is slow, as under sanitizers, the trace may be over by then.)
  TimeUs first_ready = kNever;
  for (const auto& [w, at] : ready_at) {
    if (w != 0) first_ready = std::min(first_ready, at);
  }
  int arrived_after = 0;
  for (const RequestRecord& r : records) arrived_after += r.arrival_us > first_ready;
  if (arrived_after >= 2) {
    EXPECT_GT(served_by_started, 0) << "the started workers served nothing";
  }
}

TEST(EmbeddedElastic, FaultsOnAStoppedWorkerChangeNothing) {
  // One replica at most: workers 1 and 2 stay stopped throughout.
  RunConfig c = testing::cpu_config("cpu_elastic.json", {"autoscaling.max_replicas=1"});
  Trace t = phases({{2, 10}}, 8);
  EmbeddedRunOptions opt;
  opt.faults = parse_fault_scenario(
      nlohmann::json{{"faults",
                      {{{"at_s", 0.3}, {"type", "crash"}, {"worker", 2}, {"recover_after_s", 0.3}},
                       {{"at_s", 0.2}, {"type", "slowdown"}, {"worker", 1}, {"factor", 3}, {"duration_s", 0.5}}}}},
      "test faults", c.cluster);
  std::vector<RequestRecord> records;
  opt.records_out = &records;
  auto s = run_embedded(c, t, opt);
  expect_all_completed(s, records, t.requests.size());
  for (const RequestRecord& r : records) EXPECT_EQ(r.worker, 0) << "request " << r.id;
  ASSERT_EQ(s["run"]["loads"].size(), 1u) << s["run"]["loads"].dump();  // no restart of worker 2
  EXPECT_EQ(s["run"]["loads"][0]["worker"], 0);
  EXPECT_EQ(s["faults"]["requests_lost_on_crash"], 0);
  for (const auto& a : s["faults"]["applied"]) EXPECT_NE(a["event"], "rejoined") << a.dump();
  for (const auto& h : s["faults"]["health_changes"]) EXPECT_NE(h["to"], "down") << h.dump();
}

TEST(EmbeddedElastic, AStaticRunPaysForEveryWorkerAndLoadsThemAllBeforeTimeZero) {
  RunConfig c = testing::cpu_tiny_config();
  Trace t = testing::small_trace(20, 40);
  EmbeddedRunOptions opt;
  std::vector<RequestRecord> records;
  opt.records_out = &records;
  auto s = run_embedded(c, t, opt);
  EXPECT_EQ(s["requests"]["completed"].get<std::size_t>(), t.requests.size());
  EXPECT_FALSE(s.contains("autoscaling"));
  EXPECT_FALSE(s.contains("models"));
  // 2 CPU workers paid from 0 until the router stops: after the last request's end, before the
  // run's wall time is taken (how long after depends on this machine).
  TimeUs last_end = 0;
  for (const RequestRecord& r : records) last_end = std::max(last_end, r.end_us);
  const double gpu_hours = s["cost"]["gpu_hours"].get<double>();
  EXPECT_GE(gpu_hours, 2 * s_from_us(last_end) / 3600.0);
  EXPECT_LE(gpu_hours, 2 * s["run"]["wall_s"].get<double>() / 3600.0);
  EXPECT_NEAR(s["cost"]["cost"].get<double>(), gpu_hours * 0.10, 1e-9 * gpu_hours);  // CPU at 0.10 per hour
  ASSERT_EQ(s["run"]["loads"].size(), 2u);
  for (const auto& load : s["run"]["loads"]) {
    EXPECT_EQ(load["why"], "initial");
    EXPECT_FALSE(load.contains("begun_s"));
  }
}

}  // namespace
}  // namespace twinfer::runtime
