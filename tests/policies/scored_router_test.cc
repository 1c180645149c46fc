#include "policies/routers/scored_router.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "policies/registry.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using nlohmann::json;
using testing::make_request;
using testing::ViewBuilder;

// A request of `blocks` 16-token blocks with hash ids `ids` (one per block).
Request prompt(RequestId id, std::vector<std::uint64_t> ids) {
  Request r = make_request(id, 0, static_cast<int>(ids.size()) * 16, 4);
  r.prefix = BlockHashes(16, std::move(ids));
  return r;
}

TEST(PrefixIndexTest, MatchesLeadingBlocksPerWorkerAndEvictsTheLeastRecentlySent) {
  PrefixIndex index(16);
  index.record(prompt(1, {1, 2, 3}), 0, 0);
  index.record(prompt(2, {1, 2, 9}), 1, 0);
  std::vector<std::int64_t> matched;
  EXPECT_EQ(index.match(prompt(3, {1, 2, 3, 4}), 3, matched), 4);
  EXPECT_EQ(matched, (std::vector<std::int64_t>{3, 2, 0}));
  // A block held without the ones before it does not count.
  EXPECT_EQ(index.match(prompt(4, {5, 2, 3}), 3, matched), 3);
  EXPECT_EQ(matched, (std::vector<std::int64_t>{0, 0, 0}));
  // Capacity 4 on worker 2: recording 3 + 3 blocks evicts the first three, oldest first...
  index.record(prompt(5, {7, 8, 9}), 2, 4);
  EXPECT_EQ(index.blocks(2), 3);
  index.record(prompt(6, {7, 8}), 2, 4);  // touched again: now the most recent
  index.record(prompt(7, {20, 21}), 2, 4);
  EXPECT_EQ(index.blocks(2), 4);
  index.match(prompt(8, {7, 8, 9}), 3, matched);
  EXPECT_EQ(matched[2], 2);  // 9 was the least recently sent
  // Blocks the ids do not cover (a request without ids) are never recorded.
  index.record(make_request(9, 0, 64, 1), 0, 0);
  EXPECT_EQ(index.blocks(0), 3);
}

TEST(ScoredRouterTest, PrefixAloneFollowsTheConversationAndQueueAloneTheShortestQueue) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  ScoredRouter::Options prefix_only;
  prefix_only.scorers = {ScoredRouter::Scorer::of(ScoredRouter::Kind::kPrefix, 1)};
  ScoredRouter router(prefix_only);
  const int first = router.route(prompt(1, {1, 2, 3}), b.view()).worker;
  for (int turn = 2; turn < 6; ++turn) {
    EXPECT_EQ(router.route(prompt(static_cast<RequestId>(turn), {1, 2, 3, 40u + turn}), b.view()).worker, first);
  }
  ScoredRouter::Options queue_only;
  queue_only.scorers = {ScoredRouter::Scorer::of(ScoredRouter::Kind::kQueue, 1)};
  ScoredRouter queues(queue_only);
  b.worker(0).waiting = 4;
  b.worker(1).waiting = 1;
  b.worker(2).waiting = 3;
  EXPECT_EQ(queues.route(prompt(7, {1, 2}), b.view()).worker, 1);
  EXPECT_DOUBLE_EQ(queues.last_scores()[0], 0.0);
  EXPECT_DOUBLE_EQ(queues.last_scores()[1], 1.0);
  EXPECT_DOUBLE_EQ(queues.last_scores()[2], 1.0 / 3);
}

TEST(ScoredRouterTest, WeightsBlendPrefixAndLoad) {
  ViewBuilder b;
  b.add_worker().add_worker();
  ScoredRouter router(ScoredRouter::Options{});  // prefix 3, queue 2
  b.worker(0).waiting = 0;
  EXPECT_EQ(router.route(prompt(1, {1, 2, 3, 4}), b.view()).worker, 0);
  // Worker 0 holds the prefix: 3 * 1 + 2 * 0 (the longer queue) = 3 beats 2 * 1 = 2.
  b.worker(0).waiting = 5;
  EXPECT_EQ(router.route(prompt(2, {1, 2, 3, 4}), b.view()).worker, 0);
  // Half the prefix: 3 * 0.5 = 1.5 < 2.
  EXPECT_EQ(router.route(prompt(3, {1, 2, 7, 8}), b.view()).worker, 1);
}

TEST(ScoredRouterTest, AStaleViewPilesOntoTheWorkerThatLookedIdlest) {
  ViewBuilder b;
  b.add_worker().add_worker();
  ScoredRouter::Options o;
  o.scorers = {ScoredRouter::Scorer::of(ScoredRouter::Kind::kQueue, 1)};
  o.refresh_ms = 50;
  ScoredRouter stale(o);
  o.refresh_ms = 0;
  ScoredRouter fresh(o);
  b.worker(1).waiting = 1;
  EXPECT_EQ(stale.route(make_request(1), b.view(0)).worker, 0);
  EXPECT_EQ(fresh.route(make_request(1), b.view(0)).worker, 0);
  b.worker(0).waiting = 3;  // the first went there; the stale router does not see it yet
  EXPECT_EQ(stale.route(make_request(2), b.view(10'000)).worker, 0);
  EXPECT_EQ(fresh.route(make_request(2), b.view(10'000)).worker, 1);
  EXPECT_EQ(stale.route(make_request(3), b.view(50'000)).worker, 1);  // refreshed
}

TEST(ScoredRouterTest, SoftmaxDrawsBySeedAndFavoursTheBestScore) {
  ViewBuilder b;
  b.add_worker().add_worker();
  b.worker(1).waiting = 10;
  ScoredRouter::Options o;
  o.scorers = {ScoredRouter::Scorer::of(ScoredRouter::Kind::kQueue, 1)};
  o.softmax = true;
  o.temperature = 0.25;
  o.seed = 3;
  ScoredRouter a(o), again(o);
  std::map<int, int> picks;
  for (RequestId i = 0; i < 2000; ++i) {
    const int w = a.route(make_request(i), b.view()).worker;
    EXPECT_EQ(again.route(make_request(i), b.view()).worker, w);
    ++picks[w];
  }
  // exp(-1 / 0.25): worker 1 gets about 1.8 %.
  EXPECT_GT(picks[0], 1900);
  EXPECT_GT(picks[1], 10);
}

TEST(ScoredRouterTest, BadConfigsNameTheKey) {
  PolicyContext ctx;
  const auto error = [&](const json& spec) {
    return testing::error_of([&] { router_registry().make(spec, ctx, "policies.router"); });
  };
  EXPECT_EQ(error({{"name", "scored"}, {"scorers", {{{"name", "prefixx"}, {"weight", 1}}}}}),
            "policies.router (scored).scorers[0].name: unknown scorer 'prefixx'; valid: prefix, kv_events, queue, running, outstanding, "
            "kv, work");
  EXPECT_EQ(error({{"name", "scored"}, {"scorers", {{{"name", "queue"}, {"weight", -1}}}}}),
            "policies.router (scored).scorers[0].weight: must be >= 0");
  EXPECT_EQ(error({{"name", "scored"}, {"scorers", {{{"name", "kv_events"}, {"weight", 1}, {"in_flight_ms", -5}}}}}),
            "policies.router (scored).scorers[0].in_flight_ms: must be >= 0 (0: none)");
  EXPECT_EQ(error({{"name", "scored"}, {"scorers", {{{"name", "queue"}, {"weight", 1}, {"in_flight_ms", 5}}}}}).rfind(
                "policies.router (scored).scorers[0]: unknown key 'in_flight_ms'", 0),
            0u);
  EXPECT_EQ(error({{"name", "scored"}, {"temperature", 0.5}}),
            "policies.router (scored).temperature: applies only to the softmax picker");
  EXPECT_EQ(error({{"name", "scored"}, {"picker", "min"}}),
            "policies.router (scored).picker: unknown picker 'min'; valid: max, softmax");
  EXPECT_EQ(error({{"name", "cache_aware"}, {"cache_threshold", 2}}),
            "policies.router (cache_aware).cache_threshold: must be in [0, 1]");
  EXPECT_EQ(error({{"name", "kv_overlap"}, {"temperature", -1}}),
            "policies.router (kv_overlap).temperature: must be >= 0 (0: the lowest cost)");
  EXPECT_NO_THROW(router_registry().make(json{{"name", "scored"}, {"picker", "softmax"}, {"temperature", 0.5}}, ctx, "r"));
}

// A scorer as users register them (Python's twinfer.register_scorer): `favourite` scores 1, the
// rest `others` (its parameters), or returns `bad` when set.
class FavouriteScorer : public RouteScorer {
 public:
  FavouriteScorer(int favourite, double others, std::vector<double> bad)
      : favourite_(favourite), others_(others), bad_(std::move(bad)) {}
  std::vector<double> score(const Request&, const std::vector<WorkerView>& views, const std::vector<int>& candidates) override {
    EXPECT_FALSE(views.empty());
    if (!bad_.empty()) return bad_;
    std::vector<double> out;
    for (int w : candidates) out.push_back(w == favourite_ ? 1.0 : others_);
    return out;
  }
  std::string name() const override { return "favourite"; }
  ViewUse view_use() const override { return ViewUse::kMembership; }

 private:
  int favourite_;
  double others_;
  std::vector<double> bad_;
};

void register_favourite() {
  route_scorer_registry().add("favourite", [](JsonParams& p, const PolicyContext&) -> std::unique_ptr<RouteScorer> {
    int favourite = 0;
    double others = 0;
    std::vector<double> bad;
    p.get("worker", favourite);
    p.get("others", others);
    p.get("bad", bad);
    p.done();
    return std::make_unique<FavouriteScorer>(favourite, others, bad);
  });
}

TEST(ScoredRouterTest, RegisteredScorersAreWeightedWithTheBuiltInOnesAndCheckedWhereTheyAreNamed) {
  register_favourite();
  PolicyContext ctx;
  const auto make = [&](const json& scorers) {
    return router_registry().make(json{{"name", "scored"}, {"scorers", scorers}}, ctx, "policies.router");
  };
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  b.worker(2).waiting = 4;
  // Alone it decides; its parameters are its own.
  auto alone = make(json::array({{{"name", "favourite"}, {"worker", 2}}}));
  EXPECT_EQ(alone->route(make_request(1), b.view()).worker, 2);
  EXPECT_EQ(alone->view_use(), ViewUse::kMembership);
  // favourite 1 x weight 1 against queue 1 x weight 2 (worker 2 has the longest queue): the
  // queue wins at weight 2, the favourite at weight 3.
  auto blended = make(json::array({{{"name", "favourite"}, {"worker", 2}, {"weight", 1}}, {{"name", "queue"}, {"weight", 2}}}));
  EXPECT_NE(blended->route(make_request(2), b.view()).worker, 2);
  EXPECT_EQ(blended->view_use(), ViewUse::kQueues);
  auto heavier = make(json::array({{{"name", "favourite"}, {"worker", 2}, {"weight", 3}}, {{"name", "queue"}, {"weight", 2}}}));
  EXPECT_EQ(heavier->route(make_request(3), b.view()).worker, 2);
  // Its scores are checked: one per candidate, each in [0, 1].
  const auto error = [&](const json& scorers) {
    return testing::error_of([&] { make(scorers)->route(make_request(4), b.view()); });
  };
  EXPECT_EQ(error(json::array({{{"name", "favourite"}, {"bad", {0.5}}}})),
            "policies.router (scored).scorers[0] (favourite).score(): returned 1 scores for 3 candidates (one per "
            "candidate, in their order)");
  EXPECT_EQ(error(json::array({{{"name", "favourite"}, {"others", 1.5}}})),
            "policies.router (scored).scorers[0] (favourite).score(): score 1.500000 of worker 1 (candidate 1) is not "
            "in [0, 1]");
  EXPECT_EQ(error(json::array({{{"name", "favourite"}, {"wrker", 1}}})),
            "policies.router (scored).scorers[0] (favourite): unknown key 'wrker'; valid keys: bad, others, worker");
  EXPECT_EQ(error(json::array({{{"name", "favourite"}, {"weight", "heavy"}}})),
            "policies.router (scored).scorers[0].weight: expected a number, got \"heavy\"");
  // The valid names include the registered ones.
  EXPECT_NE(error(json::array({{{"name", "favorite"}}})).find("valid: prefix, kv_events, queue, running, outstanding, kv, work, favourite"),
            std::string::npos);
}

TEST(CacheAwareRouterTest, MatchAboveTheThresholdElseTheSmallestTreeAndLeastLoadedWhenImbalanced) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker();
  CacheAwareRouter router(CacheAwareRouter::Options{});
  EXPECT_EQ(router.route(prompt(1, {1, 2, 3, 4}), b.view()).worker, 0);  // nothing anywhere: smallest tree
  EXPECT_EQ(router.route(prompt(2, {9, 8}), b.view()).worker, 1);         // worker 0's tree is larger now
  // 3 of 4 blocks on worker 0: above 0.5.
  EXPECT_EQ(router.route(prompt(3, {1, 2, 3, 5}), b.view()).worker, 0);
  // 1 of 4: below; worker 2 has the smallest tree.
  EXPECT_EQ(router.route(prompt(4, {1, 6, 7, 8}), b.view()).worker, 2);
  // Imbalanced (40 - 0 > 32): the least loaded, whatever the match.
  b.worker(0).waiting = 40;
  b.worker(1).waiting = 5;
  EXPECT_EQ(router.route(prompt(5, {1, 2, 3, 4}), b.view()).worker, 2);
}

TEST(KvOverlapRouterTest, CostIsWeightedPrefillBlocksPlusActiveBlocks) {
  ViewBuilder b;
  b.add_worker().add_worker();
  for (int w = 0; w < 2; ++w) {
    b.worker(w).kv_blocks_total = 100;
    b.worker(w).kv_blocks_free = 100;
    b.worker(w).kv_block_tokens = 16;
  }
  KvOverlapRouter::Options o;
  KvOverlapRouter router(o);
  EXPECT_EQ(router.route(prompt(1, {1, 2, 3, 4, 5, 6}), b.view()).worker, 0);
  // Worker 0 has the 6 blocks cached (cost 0 + active) and 5 blocks in use; worker 1 none: 6 + 0.
  b.worker(0).kv_blocks_free = 95;
  EXPECT_EQ(router.route(prompt(2, {1, 2, 3, 4, 5, 6}), b.view()).worker, 0);  // 5 < 6
  b.worker(0).kv_blocks_free = 93;
  EXPECT_EQ(router.route(prompt(3, {1, 2, 3, 4, 5, 6}), b.view()).worker, 1);  // 7 > 6
  // A heavier overlap weight makes the cached prefix worth more than the decode load.
  o.overlap_score_weight = 2;
  KvOverlapRouter weighted(o);
  weighted.route(prompt(4, {1, 2, 3, 4, 5, 6}), b.view());  // to worker 1 (cost 12 vs 19)
  b.worker(1).kv_blocks_free = 90;
  EXPECT_EQ(weighted.route(prompt(5, {1, 2, 3, 4, 5, 6}), b.view()).worker, 1);  // 0 + 10 < 12 + 7
}

}  // namespace
}  // namespace twinfer
