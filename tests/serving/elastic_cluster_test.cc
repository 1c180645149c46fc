#include "serving/elastic/elastic_cluster.h"

#include <deque>
#include <functional>

#include <gtest/gtest.h>

#include "core/error.h"
#include "policies/registry.h"
#include "serving/splits/version_choice.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

// An autoscaler that answers from a script, and remembers what it was shown.
struct Script {
  std::deque<int> answers;
  std::vector<PoolSample> samples;
};
Script& script() {
  static Script s;
  return s;
}
class ScriptedAutoscaler : public Autoscaler {
 public:
  ScaleDecision decide(const PoolSample& s) override {
    script().samples.push_back(s);
    int d = script().answers.empty() ? s.current() : script().answers.front();
    if (!script().answers.empty()) script().answers.pop_front();
    return {d, "scripted"};
  }
  std::string name() const override { return "scripted"; }
};

// Four instances of "m" on two hosts: two cheap L4s, two dear H100s (listed first).
RunConfig elastic_config(const nlohmann::json& autoscaling) {
  if (!autoscaler_registry().contains("scripted")) {
    autoscaler_registry().add("scripted", [](JsonParams& p, const PolicyContext&) {
      p.done();
      return std::make_unique<ScriptedAutoscaler>();
    });
  }
  nlohmann::json c = nlohmann::json::parse(R"({
    "cluster": {
      "models": {"m": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16}},
      "hosts": [{"name": "big", "device": "H100", "gpus": 2, "instances": [{"model": "m", "count": 2}]},
                {"name": "small", "device": "L4", "gpus": 2, "instances": [{"model": "m", "count": 2}]}]
    }
  })");
  if (!autoscaling.is_null()) c["autoscaling"] = autoscaling;
  return parse_run_config(c, "e.json");
}

struct Fixture {
  explicit Fixture(const nlohmann::json& autoscaling)
      : config(elastic_config(autoscaling)), recorder({}, {"w0", "w1", "w2", "w3"}, SloSpec{}),
        elastic(config, cost, 1, recorder), views(4) {
    for (int i = 0; i < 4; ++i) {
      views[i].index = i;
      views[i].instance = &config.cluster.instances[i];
      views[i].lifecycle = elastic.lifecycle(i);
    }
  }
  ClusterView view(TimeUs now) { return ClusterView{now, &views}; }
  std::vector<LifecycleChange> decide(TimeUs now, std::vector<TimeUs> busy = {0, 0, 0, 0}) {
    auto changes = elastic.decide(view(now), busy);
    for (auto& c : changes) views[c.worker].lifecycle = c.to;
    return changes;
  }
  RunConfig config;
  testing::FakeCostModel cost;
  Recorder recorder;
  ElasticCluster elastic;
  std::vector<WorkerView> views;
};

nlohmann::json scripted(int min, int max, int initial) {
  return {{"autoscaler", "scripted"}, {"interval_s", 10}, {"min_replicas", min}, {"max_replicas", max},
          {"initial_replicas", initial}, {"cold_start", {{"startup_s", 1}, {"load_gbps", 2}}}};
}

TEST(ElasticCluster, WithoutAutoscalingEveryWorkerIsReadyAndPaidThroughout) {
  Fixture f(nullptr);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(f.elastic.lifecycle(i), Lifecycle::kReady);
  EXPECT_TRUE(f.decide(10'000'000).empty());
  f.elastic.finish(3'600'000'000);  // one hour
  nlohmann::json s = f.elastic.summary(1000);
  EXPECT_DOUBLE_EQ(s["cost"]["gpu_hours"].get<double>(), 4.0);
  // 2 H100 at 4.00 + 2 L4 at 0.80 per hour (built-in prices), for 1000 requests.
  EXPECT_NEAR(s["cost"]["cost"].get<double>(), 9.6, 1e-9);
  EXPECT_NEAR(s["cost"]["cost_per_million_requests"].get<double>(), 9600.0, 1e-6);
  EXPECT_FALSE(s.contains("autoscaling"));
}

TEST(ElasticCluster, InitialReplicasAreTheCheapestInstances) {
  Fixture f(scripted(1, 4, 2));
  EXPECT_EQ(f.elastic.lifecycle(0), Lifecycle::kStopped);  // H100
  EXPECT_EQ(f.elastic.lifecycle(1), Lifecycle::kStopped);
  EXPECT_EQ(f.elastic.lifecycle(2), Lifecycle::kReady);    // L4
  EXPECT_EQ(f.elastic.lifecycle(3), Lifecycle::kReady);
}

TEST(ElasticCluster, ScaleUpStartsWorkersThatBecomeReadyAfterTheirColdStart) {
  Fixture f(scripted(1, 4, 2));
  script() = {};
  script().answers = {4};
  auto changes = f.decide(10'000'000);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].worker, 0);
  EXPECT_EQ(changes[0].to, Lifecycle::kStarting);
  EXPECT_EQ(changes[1].worker, 1);
  // 1 s startup + 2 GB (1e9 params x 2 bytes) at 2 GB/s.
  EXPECT_EQ(f.elastic.cold_start_us(0), 2'000'000);
  EXPECT_FALSE(f.elastic.ready(0, f.elastic.start_epoch(0) - 1, 12'000'000));  // a stale start
  EXPECT_TRUE(f.elastic.ready(0, f.elastic.start_epoch(0), 12'000'000));
  EXPECT_EQ(f.elastic.lifecycle(0), Lifecycle::kReady);
  ASSERT_EQ(script().samples.size(), 1u);
  EXPECT_EQ(script().samples[0].ready, 2);
  EXPECT_EQ(script().samples[0].starting, 0);
}

TEST(ElasticCluster, SampleMeasuresUtilizationArrivalsAndQueues) {
  Fixture f(scripted(1, 4, 2));
  script() = {};
  Request r = testing::make_request(0, 0, 100, 20);
  f.elastic.on_routed(2, r);
  r.input_tokens = 300;
  r.output_tokens = 40;
  f.elastic.on_routed(3, r);
  f.views[2].waiting = 3;
  f.views[3].running = 5;
  f.decide(10'000'000, {0, 0, 5'000'000, 10'000'000});
  f.decide(20'000'000, {0, 0, 6'000'000, 10'000'000});
  ASSERT_EQ(script().samples.size(), 2u);
  const PoolSample& a = script().samples[0];
  EXPECT_EQ(a.interval_us, 10'000'000);
  EXPECT_DOUBLE_EQ(a.utilization, 0.75);  // (0.5 + 1.0) / 2 ready replicas
  EXPECT_EQ(a.arrivals, 2);
  EXPECT_DOUBLE_EQ(a.mean_input_tokens, 200);
  EXPECT_DOUBLE_EQ(a.mean_output_tokens, 30);
  EXPECT_DOUBLE_EQ(a.p95_output_tokens, 40);  // nearest rank: ceil(0.95 x 2) = the 2nd of {20, 40}
  EXPECT_EQ(a.waiting, 3);
  EXPECT_EQ(a.running, 5);
  EXPECT_EQ(a.min_replicas, 1);
  EXPECT_EQ(a.max_replicas, 4);
  const PoolSample& b = script().samples[1];
  EXPECT_DOUBLE_EQ(b.utilization, 0.05);  // busy 1 s of 10 on one, 0 on the other
  EXPECT_EQ(b.arrivals, 0);
  EXPECT_DOUBLE_EQ(b.p95_output_tokens, 0);
}

TEST(ElasticCluster, ScaleDownDrainsTheDearestAndStopsItWhenEmpty) {
  Fixture f(scripted(1, 4, 4));
  script() = {};
  f.views[0].waiting = 2;  // both H100s are dearer; worker 1 is idle, so it drains first
  script().answers = {3};
  auto changes = f.decide(10'000'000);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].worker, 1);
  EXPECT_EQ(changes[0].to, Lifecycle::kDraining);
  f.elastic.stopped(1, 15'000'000);
  EXPECT_EQ(f.elastic.lifecycle(1), Lifecycle::kStopped);
  f.elastic.finish(20'000'000);
  // 3 GPUs for 20 s and one for 15 s.
  EXPECT_NEAR(f.elastic.summary(0)["cost"]["gpu_hours"].get<double>(), (3 * 20 + 15) / 3600.0, 1e-12);
}

TEST(ElasticCluster, GrowingResumesADrainingWorkerBeforeStartingOne) {
  Fixture f(scripted(1, 4, 3));
  script() = {};
  script().answers = {2, 3};
  auto down = f.decide(10'000'000);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].to, Lifecycle::kDraining);
  auto up = f.decide(20'000'000);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].worker, down[0].worker);
  EXPECT_EQ(up[0].to, Lifecycle::kReady);
}

TEST(ElasticCluster, ShrinkingCancelsColdStartsFirst) {
  Fixture f(scripted(1, 4, 2));
  script() = {};
  script().answers = {3, 2};
  auto up = f.decide(10'000'000);
  ASSERT_EQ(up.size(), 1u);
  auto down = f.decide(11'000'000);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].worker, up[0].worker);
  EXPECT_EQ(down[0].to, Lifecycle::kStopped);
}

TEST(ElasticCluster, DecisionsAreClampedAndTheSeriesRecordsEveryChange) {
  Fixture f(scripted(2, 3, 2));
  script() = {};
  script().answers = {9, 0};
  EXPECT_EQ(f.decide(10'000'000).size(), 1u);  // 9 clamped to 3
  EXPECT_TRUE(f.elastic.ready(0, f.elastic.start_epoch(0), 13'000'000) ||
              f.elastic.ready(1, f.elastic.start_epoch(1), 13'000'000));
  EXPECT_EQ(f.decide(20'000'000).size(), 1u);  // 0 clamped to 2
  f.elastic.finish(30'000'000);
  nlohmann::json pool = f.elastic.summary(0)["autoscaling"]["pools"][0];
  EXPECT_EQ(pool["scale_ups"], 1);
  EXPECT_EQ(pool["scale_downs"], 1);
  EXPECT_EQ(pool["peak_replicas"], 3);
  EXPECT_EQ(pool["replicas"]["t_s"], nlohmann::json({0.0, 10.0, 13.0, 20.0}));
  EXPECT_EQ(pool["replicas"]["ready"], nlohmann::json({2, 2, 3, 2}));
  EXPECT_EQ(pool["replicas"]["starting"], nlohmann::json({0, 1, 0, 0}));
  EXPECT_EQ(pool["replicas"]["draining"], nlohmann::json({0, 0, 0, 1}));
}

TEST(ElasticCluster, BoundsBeyondThePoolAreAnErrorNamingTheModel) {
  try {
    Fixture f(scripted(1, 5, 1));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("e.json: autoscaling: model 'm' has 4 instances"), std::string::npos) << e.what();
  }
}

// Two versions of "m", two H100 instances each (workers 0, 1: m-v1; 2, 3: m-v2), and a split that
// moves every request from m-v1 to m-v2 at 100 s. Decisions every 10 s, 2 s cold start: lead 12 s.
struct HotSwap {
  HotSwap()
      : config(config_of()), versions(config.cluster, config.traffic_split, 1),
        recorder({}, {"w0", "w1", "w2", "w3"}, SloSpec{}), elastic(config, cost, 1, recorder, &versions), views(4) {
    for (int i = 0; i < 4; ++i) {
      views[i].index = i;
      views[i].instance = &config.cluster.instances[i];
      views[i].lifecycle = elastic.lifecycle(i);
    }
  }
  static RunConfig config_of() {
    elastic_config(nullptr);  // registers "scripted"
    nlohmann::json c = nlohmann::json::parse(R"({
      "cluster": {
        "models": {"m-v1": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16, "version_of": "m"},
                   "m-v2": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16, "version_of": "m"}},
        "hosts": [{"name": "h", "device": "H100", "gpus": 4,
                   "instances": [{"model": "m-v1", "count": 2}, {"model": "m-v2", "count": 2}]}]
      },
      "policies": {"traffic_split": {"m": {"name": "weighted", "weights": {"m-v1": 1},
                                           "schedule": [{"at_s": 100, "weights": {"m-v2": 1}}]}}}
    })");
    c["autoscaling"] = scripted(1, 2, 2);
    return parse_run_config(c, "swap.json");
  }
  std::vector<LifecycleChange> decide(TimeUs now) {
    auto changes = elastic.decide(ClusterView{now, &views}, {0, 0, 0, 0});
    for (auto& c : changes) views[c.worker].lifecycle = c.to;
    return changes;
  }
  void ready(int w, TimeUs now) {
    ASSERT_TRUE(elastic.ready(w, elastic.start_epoch(w), now));
    views[w].lifecycle = Lifecycle::kReady;
  }
  std::string version_for(RequestId id, TimeUs now) {
    Request r = testing::make_request(id), scratch;
    r.model = "m";
    return versions.resolve(r, now, views, scratch).model;
  }
  RunConfig config;
  VersionChoice versions;
  testing::FakeCostModel cost;
  Recorder recorder;
  ElasticCluster elastic;
  std::vector<WorkerView> views;
};

TEST(ElasticCluster, AHotSwapStartsTheNewVersionAheadSizedLikeTheOldAndRetiresTheOldOnceItServes) {
  script() = {};
  HotSwap f;
  // The new version gets nothing within the lead at time 0: not loaded.
  EXPECT_EQ(f.elastic.lifecycle(0), Lifecycle::kReady);
  EXPECT_EQ(f.elastic.lifecycle(1), Lifecycle::kReady);
  EXPECT_EQ(f.elastic.lifecycle(2), Lifecycle::kStopped);
  EXPECT_EQ(f.elastic.lifecycle(3), Lifecycle::kStopped);
  for (RequestId id = 0; id < 2; ++id) EXPECT_EQ(f.version_for(id, 0), "m-v1");
  EXPECT_TRUE(f.decide(80'000'000).empty());  // 100 s is beyond 80 + 12
  // At 90 s the switch is within the lead: m-v2 starts as many replicas as m-v1 has.
  auto changes = f.decide(90'000'000);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].to, Lifecycle::kStarting);
  EXPECT_EQ(changes[1].to, Lifecycle::kStarting);
  EXPECT_EQ(changes[0].worker + changes[1].worker, 2 + 3);
  // At 100 s the weights moved but m-v2 is still loading: the traffic stays on m-v1, which keeps
  // its replicas.
  EXPECT_EQ(f.version_for(2, 100'000'000), "m-v1");
  EXPECT_TRUE(f.decide(100'000'000).empty());
  f.ready(2, 101'000'000);
  f.ready(3, 101'000'000);
  EXPECT_EQ(f.version_for(3, 101'000'000), "m-v2");
  EXPECT_EQ(f.version_for(2, 101'000'000), "m-v1");  // chosen while m-v2 loaded: m-v1 still serves, it stays
  // m-v2 serves: m-v1 drains to zero.
  changes = f.decide(110'000'000);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].to, Lifecycle::kDraining);
  EXPECT_EQ(changes[1].to, Lifecycle::kDraining);
  // A retry of a request chosen for m-v1 goes to m-v2 now that m-v1 no longer serves.
  EXPECT_EQ(f.version_for(2, 111'000'000), "m-v2");
  f.elastic.stopped(0, 112'000'000);
  f.elastic.stopped(1, 112'000'000);
  EXPECT_TRUE(f.decide(120'000'000).empty());  // stays retired
  f.elastic.finish(200'000'000);
  nlohmann::json s = f.elastic.summary(10);
  const auto& pools = s["autoscaling"]["pools"];
  EXPECT_EQ(pools[0]["model"], "m-v1");
  EXPECT_EQ(pools[0]["replicas"]["ready"].back(), 0);
  EXPECT_EQ(pools[1]["replicas"]["ready"].back(), 2);
  // GPU time: m-v1 2 x 112 s, m-v2 2 x (200 - 90) s.
  EXPECT_NEAR(s["cost"]["gpu_hours"].get<double>(), (2 * 112.0 + 2 * 110.0) / 3600, 1e-9);
}

}  // namespace
}  // namespace twinfer
