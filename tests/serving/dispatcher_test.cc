// The request lifecycle on its own: a manual clock and a carrier that writes down what it is asked
// to do, with the real policies of a parsed config. No threads, no sleeps, no engine.
#include "serving/dispatcher.h"

#include <algorithm>
#include <map>

#include <gtest/gtest.h>

#include "serving/run_config.h"
#include "serving/run_policies.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using nlohmann::json;

// Carries out nothing: records the actions and holds the timers until the test advances the clock.
class FakeCarrier : public Carrier {
 public:
  explicit FakeCarrier(std::vector<WorkerView>* views) : views_(views) {}
  ClusterView view() override { return ClusterView{now, views_}; }
  void send(const Request& r, int worker, int attempt) override {
    log.push_back("send " + std::to_string(r.id) + " " + r.model.str() + " w" + std::to_string(worker) + " #" +
                  std::to_string(attempt));
  }
  void cancel(RequestId id, int worker) override {
    log.push_back("cancel " + std::to_string(id) + " w" + std::to_string(worker));
  }
  void at(const DispatchTimer& timer) override { timers.push_back(timer); }
  // An Ending, kept (its reason is only valid during the call).
  struct Ended {
    int worker = -1;
    int attempts = 0;
    Outcome outcome = Outcome::kCompleted;
    std::string reason;
    TimeUs at_us = 0;
  };
  void ended(const Ending& e) override {
    ends[e.id] = Ended{e.worker, e.attempts, e.outcome, std::string(e.reason), e.at_us};
    log.push_back("end " + std::to_string(e.id) + " " + outcome_name(e.outcome));
  }

  // Moves the clock to t, firing every timer due by then in time order (ties in request order).
  void advance(Dispatcher& d, TimeUs t) {
    for (;;) {
      auto it = std::min_element(timers.begin(), timers.end(), [](const DispatchTimer& a, const DispatchTimer& b) {
        return a.at_us != b.at_us ? a.at_us < b.at_us : a.id < b.id;
      });
      if (it == timers.end() || it->at_us > t) break;
      DispatchTimer due = *it;
      timers.erase(it);
      now = due.at_us;
      d.fire(due, now);
    }
    now = t;
  }
  std::string last() const { return log.empty() ? "" : log.back(); }

  TimeUs now = 0;
  std::vector<std::string> log;
  std::vector<DispatchTimer> timers;
  std::map<RequestId, Ended> ends;

 private:
  std::vector<WorkerView>* views_;
};

json config_json() {
  return json::parse(R"({
    "cluster": {
      "models": {"m-v1": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16, "version_of": "m"},
                 "m-v2": {"params": 1e9, "layers": 16, "hidden": 2048, "heads": 16, "version_of": "m"}},
      "hosts": [{"name": "h", "device": "H100", "gpus": 4,
                 "instances": [{"model": "m-v1", "count": 2}, {"model": "m-v2", "count": 2}]}]
    },
    "policies": {"router": "round_robin"},
    "protection": {"retry": {"max_attempts": 3, "jitter": 0, "backoff_base_ms": 10, "backoff_max_ms": 10,
                             "budget_min_retries": 100}}
  })");
}

// Four workers h/gpu0..3: two of m-v1, two of m-v2; requests ask for "m-v1" unless a test says.
struct Fixture {
  explicit Fixture(json c = config_json(), int requests = 8) {
    config = parse_run_config(c, "dispatch.json");
    policies = make_run_policies(config, 1);
    for (int i = 0; i < requests; ++i) {
      Request r = testing::make_request(RequestId(i), TimeUs(i), 100, 10, "m-v1");
      trace.push_back(r);
    }
    for (const auto& inst : config.cluster.instances) {
      WorkerView v;
      v.index = inst.index;
      v.instance = &inst;
      v.kv_blocks_total = v.kv_blocks_free = 1000;
      v.kv_block_tokens = 16;
      views.push_back(v);
      names.push_back(inst.name);
    }
    versions = std::make_unique<VersionChoice>(config.cluster, config.traffic_split, 1);
    health = std::make_unique<WorkerHealth>(views.size(), config.protection.health, 0);
    DispatcherParts parts = bare_parts();
    parts.requests = &trace;
    parts.versions = versions.get();
    parts.health = health.get();
    dispatcher = std::make_unique<Dispatcher>(parts, carrier);
  }
  // The policies and names, and nothing a run may lack.
  DispatcherParts bare_parts() {
    DispatcherParts parts;
    parts.protection = &config.protection;
    parts.router = policies.router.get();
    parts.shed = policies.shed.get();
    parts.admission = policies.admission.get();
    parts.worker_names = names;
    parts.seed = 1;
    return parts;
  }
  void arrive(RequestId id) {
    carrier.now = std::max(carrier.now, trace[id].arrival_us);
    health->apply(views, carrier.now);
    dispatcher->arrive(id, carrier.view());
  }
  // Health as the router would see it at `now`.
  void refresh(TimeUs now) {
    health->refresh(now);
    health->apply(views, now);
  }

  RunConfig config;
  RunPolicies policies;
  std::vector<Request> trace;
  std::vector<WorkerView> views;
  std::vector<std::string> names;
  std::unique_ptr<VersionChoice> versions;
  std::unique_ptr<WorkerHealth> health;
  FakeCarrier carrier{&views};
  std::unique_ptr<Dispatcher> dispatcher;
};

TEST(Dispatcher, ARequestIsSentOnceAndEndsWithItsWorkersAnswer) {
  Fixture f;
  f.arrive(0);
  EXPECT_EQ(f.carrier.last(), "send 0 m-v1 w0 #1");
  EXPECT_TRUE(f.dispatcher->current_on(0, 0, 1));
  EXPECT_EQ(f.dispatcher->attempts_on(0), 1);
  EXPECT_EQ(f.dispatcher->in_flight(), 1);
  EXPECT_TRUE(f.dispatcher->answered(0, 0, Outcome::kCompleted, "", 500, nullptr, -1));
  EXPECT_EQ(f.carrier.last(), "end 0 completed");
  EXPECT_EQ(f.carrier.ends[0].attempts, 1);
  EXPECT_EQ(f.carrier.ends[0].worker, 0);
  EXPECT_EQ(f.dispatcher->in_flight(), 0);
  EXPECT_EQ(f.dispatcher->attempts_on(0), 0);
  // A second answer (a duplicate, a stale copy) changes nothing.
  EXPECT_FALSE(f.dispatcher->answered(0, 0, Outcome::kDropped, "late", 600, nullptr, -1));
  EXPECT_EQ(f.carrier.ends.size(), 1u);
}

TEST(Dispatcher, ACrashFailsEveryAttemptOnTheWorkerAndTheRetriesGoElsewhere) {
  Fixture f;
  f.arrive(0);  // w0
  f.arrive(1);  // w1
  f.arrive(2);  // w0
  f.carrier.now = 1000;
  f.dispatcher->worker_crashed(0, 1000);
  EXPECT_EQ(f.dispatcher->attempts_on(0), 0);
  EXPECT_EQ(f.carrier.timers.size(), 2u);  // two retries after the 10 ms backoff
  f.refresh(1000);
  EXPECT_EQ(f.views[0].health, Health::kDown);  // a crash is a hard failure: down at once
  f.carrier.advance(*f.dispatcher, 20'000);
  // Both retries went to the only other m-v1 worker, as attempt 2.
  EXPECT_TRUE(f.dispatcher->current_on(0, 1, 2));
  EXPECT_TRUE(f.dispatcher->current_on(2, 1, 2));
  // The crashed worker's answer is stale.
  EXPECT_FALSE(f.dispatcher->answered(0, 0, Outcome::kCompleted, "", 21'000, nullptr, -1));
  EXPECT_TRUE(f.dispatcher->answered(0, 1, Outcome::kCompleted, "", 22'000, nullptr, -1));
  EXPECT_EQ(f.carrier.ends[0].attempts, 2);
  EXPECT_EQ(f.carrier.ends[0].worker, 1);
}

TEST(Dispatcher, WithoutRetriesACrashDropsItsRequestsWithTheCrashAsReason) {
  json c = config_json();
  c["protection"]["retry"]["max_attempts"] = 1;
  Fixture f(c);
  f.arrive(0);
  f.dispatcher->worker_crashed(0, 100);
  ASSERT_EQ(f.carrier.ends.count(0), 1u);
  EXPECT_EQ(f.carrier.ends[0].outcome, Outcome::kDropped);
  EXPECT_EQ(f.carrier.ends[0].reason.rfind("worker h/gpu0 crashed", 0), 0u) << f.carrier.ends[0].reason;
  EXPECT_TRUE(f.carrier.timers.empty());
}

TEST(Dispatcher, TheRetryBudgetRunsOutAfterMaxAttempts) {
  Fixture f;
  f.arrive(0);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    int w = 0;
    while (w < 4 && !f.dispatcher->current_on(0, w, attempt)) ++w;
    ASSERT_LT(w, 4) << "attempt " << attempt << " was not sent";
    f.dispatcher->attempt_failed(0, w, "worker h/gpu" + std::to_string(w) + " unreachable: boom", false, f.carrier.now);
    f.carrier.advance(*f.dispatcher, f.carrier.now + 10'000);
  }
  ASSERT_EQ(f.carrier.ends.count(0), 1u);
  EXPECT_EQ(f.carrier.ends[0].outcome, Outcome::kDropped);
  EXPECT_NE(f.carrier.ends[0].reason.find("gave up after 3 attempts"), std::string::npos) << f.carrier.ends[0].reason;
  EXPECT_EQ(f.carrier.ends[0].attempts, 3);
}

TEST(Dispatcher, ATimeLimitCancelsTheAttemptAndEndsTimedOutAtTheDeadline) {
  json c = config_json();
  c["protection"]["request_timeout_ms"] = 2.5;
  Fixture f(c);
  f.arrive(3);
  EXPECT_EQ(f.dispatcher->next_timer_us(3), 3 + 2500);
  f.carrier.advance(*f.dispatcher, 10'000);
  ASSERT_EQ(f.carrier.ends.count(3), 1u);
  EXPECT_EQ(f.carrier.ends[3].outcome, Outcome::kTimedOut);
  EXPECT_EQ(f.carrier.ends[3].reason, "no answer within 2.5 ms");
  EXPECT_EQ(f.carrier.ends[3].at_us, 2503);  // at the deadline, though the clock moved on to 10 ms
  EXPECT_EQ(f.carrier.log[f.carrier.log.size() - 2], "cancel 3 w0");
  EXPECT_FALSE(f.dispatcher->answered(3, 0, Outcome::kCompleted, "", 11'000, nullptr, -1));
  EXPECT_EQ(f.dispatcher->next_timer_us(10'000), kNever);
}

TEST(Dispatcher, LostHeartbeatsCancelTheAttemptsOnAPartitionedWorkerAndRetryThem) {
  Fixture f;
  f.arrive(0);  // w0
  f.arrive(1);  // w1
  f.carrier.now = 5000;
  f.views[0].health = Health::kDown;  // as the heartbeat monitor calls it
  f.dispatcher->heartbeat_lost(0, 5000);
  EXPECT_EQ(f.carrier.log[f.carrier.log.size() - 1], "cancel 0 w0");
  EXPECT_FALSE(f.dispatcher->current_on(0, 0));
  EXPECT_TRUE(f.dispatcher->current_on(1, 1));  // the other worker's attempt is untouched
  f.carrier.advance(*f.dispatcher, 16'000);
  EXPECT_EQ(f.carrier.last(), "send 0 m-v1 w1 #2");
}

TEST(Dispatcher, ARetryThatFindsNoWorkerIsDroppedNamingWhy) {
  Fixture f;
  f.arrive(0);
  f.dispatcher->worker_crashed(0, 10);
  f.dispatcher->worker_crashed(1, 10);
  f.refresh(10);
  f.carrier.advance(*f.dispatcher, 20'000);
  ASSERT_EQ(f.carrier.ends.count(0), 1u);
  EXPECT_EQ(f.carrier.ends[0].outcome, Outcome::kDropped);
  EXPECT_EQ(f.carrier.ends[0].reason.rfind("no worker to retry on: ", 0), 0u) << f.carrier.ends[0].reason;
}

TEST(Dispatcher, ARouterRestartDropsWhatIsInFlightAndRejectsArrivalsUntilItIsBack) {
  Fixture f;
  f.arrive(0);
  f.arrive(1);
  EXPECT_TRUE(f.dispatcher->answered(1, 1, Outcome::kCompleted, "", 2, nullptr, -1));
  f.dispatcher->router_down(3);
  EXPECT_EQ(f.carrier.ends[0].outcome, Outcome::kDropped);
  EXPECT_EQ(f.carrier.ends[0].reason, "router restarted");
  EXPECT_EQ(f.carrier.ends[1].outcome, Outcome::kCompleted);  // ended before: untouched
  EXPECT_NE(std::find(f.carrier.log.begin(), f.carrier.log.end(), "cancel 0 w0"), f.carrier.log.end());
  f.arrive(2);
  EXPECT_EQ(f.carrier.ends[2].outcome, Outcome::kRejected);
  EXPECT_EQ(f.carrier.ends[2].reason, "router unavailable");
  f.dispatcher->router_up();
  f.arrive(3);
  EXPECT_EQ(f.carrier.ends.count(3), 0u);
  EXPECT_EQ(f.dispatcher->in_flight(), 1);
  EXPECT_EQ(f.dispatcher->ended_count(), 3u);
}

TEST(Dispatcher, ADrainingWorkerGetsNothingNewAndItsAttemptsCanBeCounted) {
  Fixture f;
  f.arrive(0);  // w0
  f.views[1].lifecycle = Lifecycle::kDraining;
  f.arrive(1);
  f.arrive(2);
  EXPECT_TRUE(f.dispatcher->current_on(1, 0));
  EXPECT_TRUE(f.dispatcher->current_on(2, 0));
  EXPECT_EQ(f.dispatcher->attempts_on(1), 0);
  EXPECT_EQ(f.dispatcher->attempts_on(0), 3);
  // With no m-v1 worker ready, a request for it is rejected by the router, not lost.
  f.views[0].lifecycle = Lifecycle::kDraining;
  f.arrive(3);
  EXPECT_EQ(f.carrier.ends[3].outcome, Outcome::kRejected);
}

TEST(Dispatcher, AHotSwapSendsNewArrivalsToTheNewVersionAndARetryKeepsItsVersionWhileItServes) {
  json c = config_json();
  c["policies"]["traffic_split"] = json::parse(
      R"({"m": {"name": "weighted", "weights": {"m-v1": 1}, "schedule": [{"at_s": 0.000004, "weights": {"m-v2": 1}}]}})");
  Fixture f(c);
  for (auto& r : f.trace) r.model = "m";
  f.arrive(0);  // before the switch: m-v1
  EXPECT_EQ(f.carrier.last(), "send 0 m-v1 w0 #1");
  f.arrive(5);  // after it: m-v2
  EXPECT_EQ(f.carrier.last().substr(0, 11), "send 5 m-v2");
  // Request 0 fails; its retry keeps m-v1, which still serves.
  f.dispatcher->attempt_failed(0, 0, "worker h/gpu0 unreachable: boom", false, 10);
  f.carrier.advance(*f.dispatcher, 10'010);
  EXPECT_EQ(f.carrier.last().substr(0, 11), "send 0 m-v1");
  const int w = f.dispatcher->current_on(0, 0) ? 0 : 1;
  ASSERT_TRUE(f.dispatcher->current_on(0, w, 2));
  // m-v1 is retired (both replicas drained): the next retry is picked again, to m-v2.
  f.views[0].lifecycle = f.views[1].lifecycle = Lifecycle::kDraining;
  f.dispatcher->attempt_failed(0, w, "worker unreachable: boom", false, 10'020);
  f.carrier.advance(*f.dispatcher, 30'000);
  EXPECT_EQ(f.carrier.last().substr(0, 11), "send 0 m-v2");
}

TEST(Dispatcher, RejectionsAtAdmissionNameTheirCheck) {
  json c = config_json();
  c["protection"]["limits"] = {{"max_input_tokens", 50}};
  Fixture f(c);
  f.arrive(0);
  EXPECT_EQ(f.carrier.ends[0].outcome, Outcome::kRejected);
  EXPECT_NE(f.carrier.ends[0].reason.find("input"), std::string::npos) << f.carrier.ends[0].reason;
  EXPECT_TRUE(f.carrier.timers.empty());
}

TEST(Dispatcher, TheSameEventsGiveTheSameActions) {
  auto run = [] {
    json c = config_json();
    c["protection"]["retry"]["jitter"] = 0.5;
    c["protection"]["request_timeout_ms"] = 40;
    Fixture f(c);
    for (RequestId id = 0; id < 8; ++id) f.arrive(id);
    f.dispatcher->worker_crashed(0, 10);
    f.dispatcher->heartbeat_lost(1, 11);
    f.refresh(11);
    f.carrier.advance(*f.dispatcher, 100'000);
    return f.carrier.log;
  };
  const auto first = run();
  EXPECT_EQ(first, run());
  EXPECT_GT(first.size(), 20u);
}

// A server's requests come one by one: slots are reused once their request ended, and nothing of a
// slot's earlier request (its time limit, a retry, a late answer) reaches the next one.
struct OnlineFixture : Fixture {
  OnlineFixture() : Fixture(with_timeout(), 0) { dispatcher = std::make_unique<Dispatcher>(bare_parts(), carrier); }
  static json with_timeout() {
    json c = config_json();
    c["protection"]["request_timeout_ms"] = 5;
    return c;
  }
  RequestId open(RequestId client_id, TimeUs at) {
    carrier.now = at;
    Request r = testing::make_request(client_id, at, 100, 10, "m-v1");
    const RequestId id = dispatcher->open(r);
    dispatcher->arrive(id, carrier.view());
    return id;
  }
};

TEST(Dispatcher, OnlineSlotsAreReusedAndAnEarlierRequestsTimersAndAnswersNeverReachTheNext) {
  OnlineFixture f;
  const RequestId a = f.open(1000, 0);
  const std::uint32_t ticket_a = f.dispatcher->ticket(a);
  const int worker_a = f.carrier.ends.count(a) ? -1 : (f.dispatcher->current_on(a, 0) ? 0 : 1);
  ASSERT_GE(worker_a, 0);
  EXPECT_TRUE(f.dispatcher->answered(a, worker_a, Outcome::kCompleted, "", 100, nullptr, -1));
  // The next request takes the same slot, with a new generation and a new ticket.
  const RequestId b = f.open(1001, 200);
  EXPECT_EQ(b, a);
  EXPECT_EQ(f.dispatcher->generation(b), 1u);
  EXPECT_FALSE(f.dispatcher->current(b, ticket_a));
  EXPECT_TRUE(f.dispatcher->current(b, f.dispatcher->ticket(b)));
  // A's time limit (at 5 ms) falls due while B, admitted at 0.2 ms, still has until 5.2 ms.
  f.carrier.advance(*f.dispatcher, 5'100);
  EXPECT_EQ(f.carrier.ends.count(b), 1u);  // ends[] is keyed by slot: still A's completed end
  EXPECT_EQ(f.carrier.ends[b].outcome, Outcome::kCompleted);
  EXPECT_EQ(f.dispatcher->in_flight(), 1);
  f.carrier.advance(*f.dispatcher, 5'300);
  EXPECT_EQ(f.carrier.ends[b].outcome, Outcome::kTimedOut);
  EXPECT_EQ(f.dispatcher->in_flight(), 0);
  // A client that hangs up after its request ended changes nothing; one that hangs up before drops it.
  const RequestId c = f.open(1002, 6'000);
  f.dispatcher->abandon(c, f.dispatcher->generation(c) - 1, "client cancelled the call", 6'100);
  EXPECT_EQ(f.dispatcher->in_flight(), 1);
  f.dispatcher->abandon(c, f.dispatcher->generation(c), "client cancelled the call", 6'100);
  EXPECT_EQ(f.carrier.ends[c].outcome, Outcome::kDropped);
  EXPECT_EQ(f.carrier.ends[c].reason, "client cancelled the call");
}

TEST(Dispatcher, AShutDownDropsWhatIsInFlightAndARenewedRouterServesAgain) {
  OnlineFixture f;
  const RequestId a = f.open(1, 0);
  const RequestId b = f.open(2, 0);
  EXPECT_NE(a, b);
  f.dispatcher->router_down(10);
  EXPECT_EQ(f.carrier.ends[a].reason, "router restarted");
  EXPECT_EQ(f.carrier.ends[b].reason, "router restarted");
  RunPolicies fresh = make_run_policies(f.config, 2);
  f.dispatcher->renew(fresh.router.get(), fresh.shed.get(), fresh.admission.get());
  f.dispatcher->router_up();
  const RequestId c = f.open(3, 20);
  EXPECT_EQ(f.dispatcher->in_flight(), 1);
  f.dispatcher->shut_down(30);
  EXPECT_EQ(f.carrier.ends[c].outcome, Outcome::kDropped);
  EXPECT_EQ(f.carrier.ends[c].reason, "router shutting down");
  f.carrier.advance(*f.dispatcher, 100'000);  // stale time limits of every slot: nothing
  EXPECT_EQ(f.dispatcher->in_flight(), 0);
}

}  // namespace
}  // namespace twinfer
