// KV events on their way to a router: the log that readers follow with cursors, the index a router
// builds from them, and the routers that score on it.
#include "policies/kv_events.h"

#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "core/error.h"
#include "policies/routers/kv_event_index.h"
#include "policies/routers/scored_router.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::ViewBuilder;

KvEvent stored(std::uint64_t key) { return KvEvent{key, KvEventKind::kStored}; }
KvEvent removed(std::uint64_t key) { return KvEvent{key, KvEventKind::kRemoved}; }
const KvEvent kCleared{0, KvEventKind::kCleared};

std::set<std::uint64_t> replay(const std::vector<KvEvent>& events) {
  std::set<std::uint64_t> keys;
  for (const KvEvent& e : events) {
    if (e.kind == KvEventKind::kStored) keys.insert(e.key);
    if (e.kind == KvEventKind::kRemoved) keys.erase(e.key);
    if (e.kind == KvEventKind::kCleared) keys.clear();
  }
  return keys;
}

TEST(KvEventLogTest, ReadersFollowWithCursorsAndOneThatFellBehindStartsOverFromTheCachedKeys) {
  KvEventLog log(7, /*keep=*/4);
  KvEventCursor a, b;
  std::vector<KvEvent> got;
  log.append({stored(1), stored(2)});
  EXPECT_FALSE(log.read(a, got)) << "a new reader starts over";
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got.front(), kCleared);
  EXPECT_EQ(replay(got), (std::set<std::uint64_t>{1, 2}));
  EXPECT_EQ(a.log, 7u);
  EXPECT_EQ(a.next, 2u);
  got.clear();
  EXPECT_FALSE(log.read(b, got));
  log.append(removed(1));
  got.clear();
  EXPECT_TRUE(log.read(a, got));
  EXPECT_EQ(got, (std::vector<KvEvent>{removed(1)}));
  got.clear();
  EXPECT_TRUE(log.read(a, got));
  EXPECT_TRUE(got.empty());
  // Four more: the log keeps events 3 to 6; b, at 2, fell behind and starts over; a follows.
  log.append({stored(5), stored(6), removed(2), stored(8)});
  EXPECT_EQ(log.end(), 7u);
  EXPECT_EQ(log.cached(), 3u);
  got.clear();
  EXPECT_FALSE(log.read(b, got));
  EXPECT_EQ(got.front(), kCleared);
  EXPECT_EQ(replay(got), (std::set<std::uint64_t>{5, 6, 8}));
  EXPECT_EQ(b.next, 7u);
  got.clear();
  EXPECT_TRUE(log.read(a, got));
  EXPECT_EQ(got, (std::vector<KvEvent>{stored(5), stored(6), removed(2), stored(8)}));
  // A cursor of another log (the worker restarted) starts over too.
  KvEventLog restarted(8);
  got.clear();
  EXPECT_FALSE(restarted.read(b, got));
  EXPECT_EQ(got, (std::vector<KvEvent>{kCleared}));
  EXPECT_NE(new_kv_event_log_id(), new_kv_event_log_id());
}

TEST(KvEventIndexTest, MatchesLeadingBlocksAtEachWorkersBlockSizeAndForgetsRemovedAndClearedKeys) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  std::vector<WorkerView> views = *b.view().workers;
  for (WorkerView& v : views) v.kv_block_tokens = 16;
  views[2].kv_block_tokens = 0;  // not tracked: never matched
  Request r = make_request(1, 0, 64, 4);
  r.prefix = BlockHashes(16, {1, 2, 3, 4});
  PrefixKeys keys(r.prefix, r.input_tokens, r.id, 16);
  const std::uint64_t k0 = keys.next(), k1 = keys.next(), k2 = keys.next();
  KvEventIndex index;
  index.apply(0, {stored(k0), stored(k1), stored(k2)});
  index.apply(1, {stored(k1), stored(k2)});  // without the first block, nothing counts
  index.apply(2, {stored(k0)});
  std::vector<std::int64_t> matched;
  index.match(r, {0, 1, 2}, views, matched);
  EXPECT_EQ(matched[0], 48);
  EXPECT_EQ(matched[1], 0);
  EXPECT_EQ(matched[2], 0);
  index.apply(0, {removed(k1)});
  index.match(r, {0, 1}, views, matched);
  EXPECT_EQ(matched[0], 16);
  EXPECT_EQ(index.blocks(0), 2);
  index.apply(1, {stored(k0)});
  index.apply(0, {kCleared});
  index.match(r, {0, 1}, views, matched);
  EXPECT_EQ(matched[0], 0);
  EXPECT_EQ(matched[1], 48);
  EXPECT_EQ(index.blocks(0), 0);
  // Another block size, other keys: a worker with 32-token blocks matches what it reported at 32.
  views[0].kv_block_tokens = 32;
  PrefixKeys wide(r.prefix, r.input_tokens, r.id, 32);
  index.apply(0, {stored(wide.next())});
  index.match(r, {0, 1}, views, matched);
  EXPECT_EQ(matched[0], 32);
  EXPECT_EQ(matched[1], 48);
}

// A driver's delivery, for routers under test: events queued per worker, handed over when taken.
class QueuedEvents : public KvEventSource {
 public:
  explicit QueuedEvents(std::size_t workers) : queued_(workers) {}
  void take(int worker, std::vector<KvEvent>& out) override {
    auto& q = queued_[static_cast<std::size_t>(worker)];
    out.insert(out.end(), q.begin(), q.end());
    q.clear();
  }
  void push(int worker, std::vector<KvEvent> events) {
    auto& q = queued_[static_cast<std::size_t>(worker)];
    q.insert(q.end(), events.begin(), events.end());
  }

 private:
  std::vector<std::vector<KvEvent>> queued_;
};

// Three workers of 100 16-token blocks whose KV events reach the router through `events`.
struct EventCluster {
  EventCluster() {
    b.add_worker().add_worker().add_worker();
    for (int w = 0; w < 3; ++w) {
      b.worker(w).kv_block_tokens = 16;
      b.worker(w).kv_blocks_total = 100;
      b.worker(w).kv_blocks_free = 100;
    }
  }
  ClusterView view(TimeUs now) {
    ClusterView v = b.view(now);
    v.kv_events = &events;
    return v;
  }
  ViewBuilder b;
  QueuedEvents events{3};
};

Request prompt(RequestId id, std::vector<std::uint64_t> ids) {
  Request r = make_request(id, 0, static_cast<int>(ids.size()) * 16, 4);
  r.prefix = BlockHashes(16, std::move(ids));
  return r;
}

std::vector<KvEvent> stored_prompt(const Request& r, int blocks) {
  PrefixKeys keys(r.prefix, r.input_tokens, r.id, 16);
  std::vector<KvEvent> out;
  for (int i = 0; i < blocks; ++i) out.push_back(stored(keys.next()));
  return out;
}

TEST(KvEventsScorerTest, FollowsWhatTheWorkersReportNotWhereTheRouterSentAndTakesEventsWhenViewsRefresh) {
  EventCluster cluster;
  ViewBuilder& b = cluster.b;
  QueuedEvents& events = cluster.events;
  const auto view = [&](TimeUs now) { return cluster.view(now); };
  ScoredRouter::Options o;
  o.scorers = {ScoredRouter::Scorer::of(ScoredRouter::Kind::kKvEvents, 1)};
  o.refresh_ms = 50;
  ScoredRouter router(o);
  EXPECT_TRUE(router.reads_kv_events());
  EXPECT_EQ(router.view_use(), ViewUse::kAll);
  const Request r = prompt(1, {1, 2, 3, 4});
  // Worker 2 reports the prompt's first three blocks: 48 of its 64 tokens.
  events.push(2, stored_prompt(r, 3));
  EXPECT_EQ(router.route(r, view(0)).worker, 2);
  EXPECT_DOUBLE_EQ(router.last_scores()[2], 0.75);
  EXPECT_DOUBLE_EQ(router.last_scores()[0], 0.0);
  // Worker 2 evicts them and worker 1 caches them: within the refresh period the router still
  // goes by what it took.
  events.push(2, {removed(stored_prompt(r, 1)[0].key)});
  events.push(1, stored_prompt(r, 4));
  EXPECT_EQ(router.route(prompt(2, {1, 2, 3, 4}), view(10'000)).worker, 2);
  EXPECT_EQ(router.route(prompt(3, {1, 2, 3, 4}), view(50'000)).worker, 1);
  EXPECT_DOUBLE_EQ(router.last_scores()[2], 0.0);
  // Without delivered events the router says what it lacks.
  ScoredRouter lacking(o);
  try {
    lacking.route(r, b.view(0));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("policies.router (scored): reads the workers' KV events"), std::string::npos)
        << e.what();
  }
  // The approximate scorers read no events.
  ScoredRouter::Options approximate;
  approximate.scorers = {ScoredRouter::Scorer::of(ScoredRouter::Kind::kPrefix, 1)};
  EXPECT_FALSE(ScoredRouter(approximate).reads_kv_events());
}

// In-flight tracking: a conversation's next turn arrives while its history, sent to worker 1,
// still waits there (no events yet). Without tracking the precise scorer sees nothing and the
// queue scorer sends the turn elsewhere; with in_flight_ms the blocks sent count as held at worker
// 1 until that time has passed, then only what the events say counts again.
TEST(KvEventsScorerTest, InFlightTrackingCountsTheBlocksSentUntilTheyAgeOut) {
  EventCluster cluster;
  ViewBuilder& b = cluster.b;
  QueuedEvents& events = cluster.events;
  const auto view = [&](TimeUs now) { return cluster.view(now); };
  const auto make = [](double in_flight_ms) {
    ScoredRouter::Options o;
    o.scorers = {ScoredRouter::Scorer::of(ScoredRouter::Kind::kKvEvents, 3),
                 ScoredRouter::Scorer::of(ScoredRouter::Kind::kQueue, 2)};
    o.in_flight_ms = in_flight_ms;
    return ScoredRouter(o);
  };
  ScoredRouter tracking = make(100), plain = make(0);
  b.worker(0).waiting = 3;
  b.worker(2).waiting = 3;
  for (ScoredRouter* router : {&tracking, &plain}) {
    EXPECT_EQ(router->route(prompt(1, {1, 2, 3}), view(0)).worker, 1) << "the shortest queue";
  }
  // Worker 1's queue is now the longest, its history not reported yet.
  b.worker(0).waiting = 0;
  b.worker(1).waiting = 5;
  b.worker(2).waiting = 1;
  EXPECT_EQ(plain.route(prompt(2, {1, 2, 3, 4}), view(50'000)).worker, 0);
  EXPECT_EQ(tracking.route(prompt(2, {1, 2, 3, 4}), view(50'000)).worker, 1);
  EXPECT_DOUBLE_EQ(tracking.last_scores()[1], 3 * 0.75) << "three of the four blocks sent there, queue score 0";
  // Sent again at 50 ms, the history stays in flight until 150 ms (sent again at 149 ms, until
  // 249 ms); at 250 ms it has aged out.
  EXPECT_EQ(tracking.route(prompt(3, {1, 2, 3, 4, 5}), view(149'000)).worker, 1);
  EXPECT_EQ(tracking.route(prompt(4, {1, 2, 3, 4, 5}), view(250'000)).worker, 0);
  EXPECT_DOUBLE_EQ(tracking.last_scores()[1], 0.0);
  // Once reported, the events count whatever the age.
  events.push(2, stored_prompt(prompt(5, {1, 2, 3, 4}), 4));
  EXPECT_EQ(tracking.route(prompt(6, {1, 2, 3, 4, 6}), view(900'000)).worker, 2);
}

TEST(PrefixIndexTest, ForgetThroughForgetsWhatWasLastRecordedByThenAndKeepsWhatWasRecordedAgain) {
  PrefixIndex index(16);
  index.record(prompt(1, {1, 2}), 0, 0);
  index.record(prompt(2, {5}), 1, 0);
  const std::uint64_t first = index.stamp();
  EXPECT_EQ(first, 3u);
  index.record(prompt(3, {1}), 0, 0);  // block 1 recorded again for worker 0
  index.forget_through(first);
  EXPECT_EQ(index.blocks(0), 1);
  EXPECT_EQ(index.blocks(1), 0);
  std::vector<std::int64_t> matched;
  index.match(prompt(4, {1, 2}), 2, matched);
  EXPECT_EQ(matched, (std::vector<std::int64_t>{1, 0}));
  index.forget_through(index.stamp());
  EXPECT_EQ(index.blocks(0), 0);
}

TEST(KvEventsScorerTest, KvOverlapWithEventsCountsTheOverlapTheWorkersReport) {
  ViewBuilder b;
  b.add_worker().add_worker();
  for (int w = 0; w < 2; ++w) {
    b.worker(w).kv_block_tokens = 16;
    b.worker(w).kv_blocks_total = 100;
    b.worker(w).kv_blocks_free = 100;
  }
  QueuedEvents events(2);
  KvOverlapRouter::Options o;
  o.use_kv_events = true;
  KvOverlapRouter router(o);
  EXPECT_TRUE(router.reads_kv_events());
  const Request r = prompt(1, {1, 2, 3, 4});
  events.push(1, stored_prompt(r, 4));
  // Worker 1 holds the 4 blocks but uses 3 more blocks than worker 0: cost 0 + 3 < 4 + 0.
  b.worker(1).kv_blocks_free = 97;
  ClusterView v = b.view(0);
  v.kv_events = &events;
  EXPECT_EQ(router.route(r, v).worker, 1);
  // 5 more in use: 0 + 8 > 4 + 0.
  b.worker(1).kv_blocks_free = 92;
  v = b.view(0);
  v.kv_events = &events;
  EXPECT_EQ(router.route(prompt(2, {1, 2, 3, 4}), v).worker, 0);
  EXPECT_FALSE(KvOverlapRouter(KvOverlapRouter::Options{}).reads_kv_events());
}

}  // namespace
}  // namespace twinfer
