#include "policies/kv_blocks.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <list>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "policies/batchers/continuous_batcher.h"
#include "policies/worker_state.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;

Request with_ids(Request r, std::vector<std::uint64_t> ids, int block_tokens = 16) {
  r.prefix = BlockHashes(block_tokens, std::move(ids));
  return r;
}

std::vector<std::uint64_t> keys_of(const Request& r, int block_tokens, int n) {
  PrefixKeys keys(r.prefix, r.input_tokens, r.id, block_tokens);
  std::vector<std::uint64_t> out;
  for (int i = 0; i < n; ++i) out.push_back(keys.next());
  return out;
}

TEST(PrefixKeysTest, EqualIdsGiveEqualKeysUpToTheFirstDifferenceAndPrivateKeysAfter) {
  const Request a = with_ids(make_request(1, 0, 64), {7, 8, 9, 10});
  const Request b = with_ids(make_request(2, 0, 64), {7, 8, 5, 10});
  const auto ka = keys_of(a, 16, 6), kb = keys_of(b, 16, 6);
  EXPECT_EQ(ka[0], kb[0]);
  EXPECT_EQ(ka[1], kb[1]);
  EXPECT_NE(ka[2], kb[2]);
  EXPECT_NE(ka[3], kb[3]);  // the chain differs from the first different id on
  EXPECT_NE(ka[4], kb[4]);  // past the prompt: private to each request
  // A request without ids has only private keys; the same request gives the same keys again.
  const Request c = make_request(3, 0, 64);
  EXPECT_EQ(keys_of(c, 16, 5), keys_of(c, 16, 5));
  EXPECT_NE(keys_of(c, 16, 1)[0], keys_of(make_request(4, 0, 64), 16, 1)[0]);
}

TEST(PrefixKeysTest, EngineBlocksSmallerThanTraceBlocksShareWhatTheIdsCover) {
  // Trace blocks of 32 tokens, engine blocks of 16: the first three engine blocks lie in the two
  // shared trace blocks; the fourth ends in the third trace block, whose id differs.
  const Request a = with_ids(make_request(1, 0, 96), {1, 2, 3}, 32);
  const Request b = with_ids(make_request(2, 0, 96), {1, 2, 4}, 32);
  const auto ka = keys_of(a, 16, 6), kb = keys_of(b, 16, 6);
  for (int j = 0; j < 4; ++j) EXPECT_EQ(ka[j], kb[j]) << j;
  EXPECT_NE(ka[4], kb[4]);
  // Engine blocks larger than trace blocks: a 64-token block is shared when both ids under it are.
  EXPECT_EQ(keys_of(a, 64, 1), keys_of(b, 64, 1));
  // A prompt shorter than a block has no shared block: 40 tokens, 64-token blocks.
  const Request c = with_ids(make_request(3, 0, 40), {1, 2}, 32);
  const Request d = with_ids(make_request(4, 0, 40), {1, 2}, 32);
  EXPECT_NE(keys_of(c, 64, 1), keys_of(d, 64, 1));
}

TEST(BlockKeyMapTest, AgreesWithAStdMapOverRandomInsertsAndErasesOfCollidingKeys) {
  BlockKeyMap map(64);  // 128 slots
  std::map<std::uint64_t, std::int32_t> reference;
  std::vector<std::uint64_t> key_of_block;  // a block's key, as KvBlocks keeps it
  const auto key_of = [&](std::int32_t b) { return key_of_block[static_cast<std::size_t>(b)]; };
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    // Few distinct high halves (which pick the home slot and are all a slot keeps): long probe
    // runs that wrap around the table, and keys told apart only by their blocks' full keys.
    const std::uint64_t key = (((rng() % 200) * 128 + (rng() % 3) + 125) << 32) | (rng() % 4);
    if (reference.count(key) > 0 && rng() % 2 == 0) {
      map.erase(key, reference[key]);
      reference.erase(key);
    } else if (reference.size() < 64) {
      const auto block = static_cast<std::int32_t>(key_of_block.size());
      key_of_block.push_back(key);
      const bool added = reference.emplace(key, block).second;
      EXPECT_EQ(map.insert(key, block, key_of), added);
    }
    ASSERT_EQ(map.size(), static_cast<std::int64_t>(reference.size()));
    for (const auto& [k, b] : reference) ASSERT_EQ(map.find(k, key_of), b) << k;
    ASSERT_EQ(map.find(key + (std::uint64_t{128 * 1000} << 32), key_of), -1);
    ASSERT_EQ(map.find(key ^ 4, key_of), -1) << "the same high half, another key";
  }
}

TEST(KvBlocksTest, FreedBlocksStayCachedAndAreEvictedLeastRecentlyFreedFirstTailFirst) {
  KvBlocks kv(KvCapacity{4, 16, true});
  const KvBlocks::BlockId a = kv.allocate(), b = kv.allocate(), c = kv.allocate(), d = kv.allocate();
  kv.cache(a, 100);
  kv.cache(b, 101);
  kv.cache(c, 102);
  EXPECT_EQ(kv.free(), 0);
  // One sequence frees a, b (tail first: b, then a); another frees c later.
  kv.release(b);
  kv.release(a);
  kv.release(c);
  EXPECT_EQ(kv.free(), 3);
  EXPECT_EQ(kv.cached(), 3);
  // A hit takes a free cached block back: it is no longer free.
  EXPECT_EQ(kv.take_cached(101), b);
  EXPECT_EQ(kv.refs(b), 1);
  EXPECT_EQ(kv.free(), 2);
  EXPECT_EQ(kv.take_cached(999), -1);
  // Allocation evicts the least recently freed: a (freed before c).
  EXPECT_EQ(kv.allocate(), a);
  EXPECT_EQ(kv.evictions(), 1);
  EXPECT_EQ(kv.take_cached(100), -1);
  EXPECT_EQ(kv.allocate(), c);
  EXPECT_EQ(kv.cached(), 1);  // only b's key is left
  (void)d;
}

TEST(KvBlocksTest, NeverUsedBlocksGoFirstAndASharedBlockIsFreedByItsLastHolder) {
  KvBlocks kv(KvCapacity{3, 16, true});
  const KvBlocks::BlockId a = kv.allocate();
  kv.cache(a, 5);
  kv.release(a);
  // A fresh block comes before the cached free one.
  EXPECT_NE(kv.allocate(), a);
  EXPECT_EQ(kv.take_cached(5), a);
  EXPECT_EQ(kv.take_cached(5), a);
  EXPECT_EQ(kv.refs(a), 2);
  kv.release(a);
  EXPECT_EQ(kv.free(), 1);
  kv.release(a);
  EXPECT_EQ(kv.free(), 2);
  // A key cached twice keeps its first block.
  const KvBlocks::BlockId x = kv.allocate();
  kv.cache(x, 5);
  EXPECT_EQ(kv.take_cached(5), a);
}

// vLLM's free queue as a linked list, next to KvBlocks over random allocations, cachings, hits and
// releases: the same blocks in the same order, through many hits on blocks in the queue (each
// leaving a stale entry in KvBlocks' array until it is dropped).
TEST(KvBlocksTest, EvictsInTheOrderOfALinkedListFreeQueueThroughManyHitsOnQueuedBlocks) {
  constexpr int kBlocks = 24;
  KvBlocks kv(KvCapacity{kBlocks, 16, true});
  std::list<KvBlocks::BlockId> queue;  // the reference: free blocks, least recently freed first
  std::map<std::uint64_t, KvBlocks::BlockId> by_key;
  std::map<KvBlocks::BlockId, std::uint64_t> key_of;
  std::vector<int> refs(kBlocks, 0);
  int fresh = 0;
  std::vector<KvBlocks::BlockId> held;  // one entry per reference
  std::mt19937_64 rng(11);
  for (int op = 0; op < 200000; ++op) {
    const int kind = static_cast<int>(rng() % 10);
    if (kind < 3 && kv.free() > 0) {
      KvBlocks::BlockId expected;
      if (fresh < kBlocks) {
        expected = fresh++;
      } else {
        expected = queue.front();
        queue.pop_front();
        if (key_of.count(expected) > 0) {
          by_key.erase(key_of[expected]);
          key_of.erase(expected);
        }
      }
      ASSERT_EQ(kv.allocate(), expected) << "op " << op;
      refs[static_cast<std::size_t>(expected)] = 1;
      held.push_back(expected);
    } else if (kind < 5 && !held.empty()) {
      const KvBlocks::BlockId b = held[rng() % held.size()];
      const std::uint64_t key = rng() % 40;
      kv.cache(b, key);
      if (key_of.count(b) == 0 && by_key.count(key) == 0) {
        by_key[key] = b;
        key_of[b] = key;
      }
    } else if (kind < 8) {
      // Mostly the few hot keys: the same blocks taken back from the queue again and again.
      const std::uint64_t key = rng() % 4 == 0 ? rng() % 40 : rng() % 3;
      const auto it = by_key.find(key);
      const KvBlocks::BlockId expected = it == by_key.end() ? -1 : it->second;
      ASSERT_EQ(kv.take_cached(key), expected) << "op " << op;
      if (expected < 0) continue;
      if (refs[static_cast<std::size_t>(expected)]++ == 0) queue.remove(expected);
      held.push_back(expected);
    } else if (!held.empty()) {
      const std::size_t i = rng() % held.size();
      const KvBlocks::BlockId b = held[i];
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
      kv.release(b);
      if (--refs[static_cast<std::size_t>(b)] == 0) queue.push_back(b);
    }
    ASSERT_EQ(kv.free(), static_cast<std::int64_t>(queue.size()) + (kBlocks - fresh)) << "op " << op;
    ASSERT_EQ(kv.cached(), static_cast<std::int64_t>(by_key.size()));
  }
}

TEST(KvBlocksTest, LookupCountsTheCachedRunAndItsFreeBlocks) {
  KvBlocks kv(KvCapacity{8, 16, true});
  const Request r = with_ids(make_request(1, 0, 64), {1, 2, 3, 4});
  PrefixKeys keys(r.prefix, r.input_tokens, r.id, 16);
  std::vector<KvBlocks::BlockId> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(kv.allocate());
    kv.cache(held.back(), keys.next());
  }
  kv.release(held[2]);
  const PrefixHit hit = kv.lookup(PrefixKeys(r.prefix, r.input_tokens, r.id, 16), 4);
  EXPECT_EQ(hit.blocks, 3);
  EXPECT_EQ(hit.free_blocks, 1);
  EXPECT_EQ(kv.lookup(PrefixKeys(r.prefix, r.input_tokens, r.id, 16), 2).blocks, 2);
  // Without prefix caching nothing is ever found.
  KvBlocks plain(KvCapacity{8, 16, false});
  const KvBlocks::BlockId p = plain.allocate();
  plain.cache(p, keys_of(r, 16, 1)[0]);
  EXPECT_EQ(plain.lookup(PrefixKeys(r.prefix, r.input_tokens, r.id, 16), 4).blocks, 0);
}

BatchPlan iteration(std::vector<BatchEntry> entries) {
  BatchPlan plan;
  plan.kind = BatchKind::kIteration;
  plan.entries = std::move(entries);
  return plan;
}

TEST(WorkerStatePrefixTest, ASecondRequestStartsWithTheCachedPrefixAndSharesItsBlocks) {
  WorkerState state(KvCapacity{100, 16, true});
  const Request a = with_ids(make_request(0, 0, 64, 2), {1, 2, 3, 4});
  Request b = with_ids(make_request(1, 0, 64, 2), {1, 2, 3, 9});
  state.enqueue(a, 0);
  state.begin(iteration({BatchEntry{0, 64, false}}), 0);
  state.finish(iteration({BatchEntry{0, 64, false}}), 10);
  state.enqueue(b, 10);
  // Three blocks of b's prompt are a's; its fourth is not.
  EXPECT_EQ(state.prefix_hit(state.get(1)).blocks, 3);
  EXPECT_EQ(state.prefix_hit(state.get(1)).free_blocks, 0);  // a still holds them
  EXPECT_NE(state.plan_error(iteration({BatchEntry{1, 64, false}})), "");
  EXPECT_EQ(state.plan_error(iteration({BatchEntry{1, 16, false}})), "");
  state.begin(iteration({BatchEntry{1, 16, false}}), 10);
  const Sequence& sb = state.get(1);
  EXPECT_EQ(sb.computed, 48);
  EXPECT_EQ(sb.cached_tokens, 48);
  EXPECT_EQ(sb.kv_blocks(), 4);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(sb.blocks[static_cast<std::size_t>(i)], state.get(0).blocks[static_cast<std::size_t>(i)]);
  EXPECT_EQ(state.kv().refs(sb.blocks[0]), 2);
  EXPECT_EQ(state.prefix_stats().hit_tokens, 48);
  EXPECT_EQ(state.prefix_stats().queried_tokens, 128);
  // The cost model sees a 16-token chunk over 48 cached tokens.
  const IterationShape shape = state.iteration_shape(iteration({BatchEntry{1, 16, false}}));
  EXPECT_EQ(shape.prefill_tokens, 16);
  EXPECT_EQ(shape.prefill_prior_tokens, 48);
  // A shared block is not freed by preempting one holder.
  EXPECT_EQ(state.blocks_freed_by(sb), 1);
}

TEST(WorkerStatePrefixTest, AWholePromptHitStillComputesItsLastToken) {
  WorkerState state(KvCapacity{100, 16, true});
  state.enqueue(with_ids(make_request(0, 0, 32, 1), {1, 2}), 0);
  state.begin(iteration({BatchEntry{0, 32, false}}), 0);
  state.finish(iteration({BatchEntry{0, 32, false}}), 1);
  EXPECT_TRUE(state.empty());
  state.enqueue(with_ids(make_request(1, 0, 32, 1), {1, 2}), 1);
  EXPECT_EQ(state.prefix_hit(state.get(1)).blocks, 1);  // 31 tokens at most: one whole block
  EXPECT_EQ(state.prefix_hit(state.get(1)).free_blocks, 1);
}

// A continuous batcher of 16-token blocks with prefix caching: 8 sequences, 256 tokens a step.
ContinuousOptions caching_options(std::int64_t blocks) {
  ContinuousOptions o;
  o.max_num_batched_tokens = 256;
  o.max_num_seqs = 8;
  o.kv_blocks = blocks;
  o.block_tokens = 16;
  o.prefix_caching = true;
  return o;
}

// Runs `trace` (arrivals in order) through a continuous batcher with prefix caching to the end,
// checking the pool's counts after every step; returns the cached tokens of each request.
// With `events`, the worker records its KV events, checked after every step against the keys it
// caches (each stored key new, each removed key held, as many held as the pool has cached), and
// appended to `events`.
std::map<RequestId, std::int32_t> run_all(const std::vector<Request>& trace, std::int64_t blocks, bool use_steady,
                                          std::vector<std::vector<KvBlocks::BlockId>>* tables = nullptr,
                                          std::vector<KvEvent>* events = nullptr) {
  ContinuousBatcher batcher(caching_options(blocks));
  WorkerState state(batcher.kv_capacity());
  state.record_kv_events(events != nullptr);
  std::set<std::uint64_t> held;
  std::map<RequestId, std::int32_t> cached;
  std::size_t next = 0;
  TimeUs now = 0;
  for (int guard = 0; guard < 100000 && (next < trace.size() || !state.empty()); ++guard) {
    // Arrivals two at a time, so that several sequences share the cache at once.
    for (int k = 0; k < 2 && next < trace.size(); ++k) state.enqueue(trace[next++], now);
    std::vector<Finished> ended;
    const std::int64_t steady = use_steady ? batcher.steady_decode_steps(state) : 0;
    if (steady > 1) {
      ended = state.advance_decode(steady);
    } else {
      BatchPlan plan = batcher.next(state, now);
      for (Finished& f : state.begin(plan, now)) ended.push_back(std::move(f));
      if (!plan.idle()) {
        for (Finished& f : state.finish(plan, ++now)) ended.push_back(std::move(f));
      }
    }
    for (const Finished& f : ended) {
      EXPECT_EQ(f.outcome, Outcome::kCompleted) << f.reason;
      cached[f.seq.request.id] = f.seq.cached_tokens;
      if (tables) tables->push_back(f.seq.blocks);
    }
    // Every block held is counted once per holder, and free + held = total.
    std::map<KvBlocks::BlockId, int> holders;
    for (RequestId id : state.running()) {
      for (KvBlocks::BlockId b : state.get(id).blocks) ++holders[b];
    }
    for (const auto& h : holders) EXPECT_EQ(state.kv().refs(h.first), h.second);
    EXPECT_EQ(state.kv().free() + static_cast<std::int64_t>(holders.size()), state.kv().total());
    if (events) {
      const std::size_t seen = events->size();
      state.take_kv_events(*events);
      for (std::size_t i = seen; i < events->size(); ++i) {
        const KvEvent& e = (*events)[i];
        if (e.kind == KvEventKind::kStored) {
          EXPECT_TRUE(held.insert(e.key).second) << "stored twice: " << e.key;
        }
        if (e.kind == KvEventKind::kRemoved) {
          EXPECT_EQ(held.erase(e.key), 1u) << "removed, not held: " << e.key;
        }
        EXPECT_NE(e.kind, KvEventKind::kCleared);
      }
      EXPECT_EQ(static_cast<std::int64_t>(held.size()), state.kv().cached());
    }
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_TRUE(state.empty());
  EXPECT_EQ(state.kv().free(), state.kv().total());
  return cached;
}

std::vector<Request> random_conversations(std::uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::uint64_t>> histories(4);
  std::uint64_t next_id = 1;
  std::vector<Request> trace;
  for (int i = 0; i < n; ++i) {
    auto& h = histories[rng() % histories.size()];
    const int add = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < add; ++k) h.push_back(next_id++);
    if (h.size() > 12) h.erase(h.begin() + 1, h.end() - 4);  // the context is cut, keeping the system prompt
    const int input = static_cast<int>(h.size()) * 16 - static_cast<int>(rng() % 16);
    Request r = make_request(static_cast<RequestId>(i), 0, input, 1 + static_cast<int>(rng() % 40));
    r.prefix = BlockHashes(16, h);
    trace.push_back(r);
  }
  return trace;
}

TEST(WorkerStatePrefixTest, RefcountsNeverLeakOverRandomConversationsWithEvictionAndPreemption) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    const auto trace = random_conversations(seed, 60);
    // 24 blocks: a few sequences fill it, so blocks are evicted and sequences preempted.
    const auto cached = run_all(trace, 24, /*use_steady=*/false);
    EXPECT_EQ(cached.size(), trace.size());
    if (HasFailure()) return;
  }
}

TEST(KvEventsTest, EventsFollowTheCachedKeysThroughEvictionAndPreemptionAndChangeNoDecision) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE(seed);
    const auto trace = random_conversations(seed, 60);
    std::vector<KvEvent> events;
    const auto with = run_all(trace, 24, false, nullptr, &events);
    EXPECT_EQ(with, run_all(trace, 24, false));
    const auto removed = std::count_if(events.begin(), events.end(), [](const KvEvent& e) { return e.kind == KvEventKind::kRemoved; });
    EXPECT_GT(removed, 0) << "24 blocks should evict";
    EXPECT_GT(static_cast<std::int64_t>(events.size()) - removed, removed);
    if (HasFailure()) return;
  }
}

TEST(KvEventsTest, RecordedInOrderOnlyWhenAskedAndAClearedWorkerSaysSo) {
  KvBlocks off(KvCapacity{2, 16, true});
  off.cache(off.allocate(), 7);
  std::vector<KvEvent> events;
  off.take_events(events);
  EXPECT_TRUE(events.empty());
  KvBlocks kv(KvCapacity{2, 16, true});
  kv.record_events(true);
  const KvBlocks::BlockId a = kv.allocate(), b = kv.allocate();
  kv.cache(a, 100);
  kv.cache(b, 101);
  kv.cache(b, 102);  // a block is cached once
  kv.release(a);
  kv.release(b);
  kv.allocate();  // evicts a's key, the least recently freed
  kv.take_events(events);
  EXPECT_EQ(events, (std::vector<KvEvent>{{100, KvEventKind::kStored}, {101, KvEventKind::kStored},
                                          {100, KvEventKind::kRemoved}}));
  kv.take_events(events);
  EXPECT_EQ(events.size(), 3u) << "taken events are forgotten";
  WorkerState state(KvCapacity{8, 16, true});
  state.record_kv_events(true);
  state.enqueue(with_ids(make_request(0, 0, 32, 4), {1, 2}), 0);
  state.begin(iteration({BatchEntry{0, 32, false}}), 0);
  state.finish(iteration({BatchEntry{0, 32, false}}), 1);
  state.clear();
  events.clear();
  state.take_kv_events(events);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), (KvEvent{0, KvEventKind::kCleared}));
  EXPECT_EQ(events.size(), 1u) << "what came before the crash is superseded";
}

TEST(WorkerStatePrefixTest, SteadyDecodeInBulkTakesTheSameBlocksAsStepByStep) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE(seed);
    const auto trace = random_conversations(seed, 40);
    std::vector<std::vector<KvBlocks::BlockId>> one, bulk;
    const auto a = run_all(trace, 64, false, &one);
    const auto b = run_all(trace, 64, true, &bulk);
    EXPECT_EQ(a, b);
    EXPECT_EQ(one, bulk);
    if (HasFailure()) return;
  }
}

TEST(KvBlocksHostTierTest, EvictedBlocksComeBackFromTheHostTierWhichEvictsLeastRecentlyUsed) {
  KvBlocks kv(KvCapacity{4, 16, true, 3});
  const Request a = with_ids(make_request(0, 0, 64), {1, 2, 3, 4});
  const auto keys = keys_of(a, 16, 4);
  // Four blocks cached on the device: the host tier stores them as they are cached, and, full at
  // three, evicts its least recently used (the first) for the fourth.
  std::vector<KvBlocks::BlockId> table;
  kv.allocate(4, table);
  for (int i = 0; i < 4; ++i) kv.cache(table[std::size_t(i)], keys[std::size_t(i)]);
  EXPECT_EQ(kv.host_stores(), 4);
  EXPECT_EQ(kv.host_evictions(), 1);
  EXPECT_EQ(kv.host_cached(), 3);
  KvTransfers t;
  kv.take_transfers(t);
  ASSERT_EQ(t.stores.size(), 4u);
  EXPECT_TRUE(t.loads.empty());
  EXPECT_EQ(t.stores[3].host_block, t.stores[0].host_block);  // the first's host block, reused
  EXPECT_FALSE(kv.has_transfers());
  kv.release_all(table);
  // A new prompt takes all four device blocks: every cached block is evicted from the device.
  std::vector<KvBlocks::BlockId> other;
  kv.allocate(4, other);
  PrefixKeys k(a.prefix, a.input_tokens, a.id, 16);
  EXPECT_EQ(kv.lookup(k, 3).blocks, 0);  // its first block is in neither tier
  kv.release_all(other);
  // A prompt whose first block differs shares nothing; one that starts with block 2's key does not
  // exist (keys chain): so look up a's own keys from the second on through the host tier.
  PrefixKeys from_second = k;
  from_second.next();
  const PrefixHit hit = kv.lookup(from_second, 3);
  EXPECT_EQ(hit.blocks, 3);
  EXPECT_EQ(hit.free_blocks, 3);  // each takes a free block to load into
  std::vector<KvBlocks::BlockId> mine;
  std::vector<HostHit> host_hits;
  EXPECT_EQ(kv.take_cached(from_second, 3, mine, host_hits), 3);
  ASSERT_EQ(host_hits.size(), 3u);
  EXPECT_EQ(mine, (std::vector<KvBlocks::BlockId>{-1, -1, -1}));
  EXPECT_EQ(kv.free(), 4);  // nothing taken before the loads
  for (std::size_t i = 0; i < 3; ++i) mine[i] = kv.load(host_hits[i]);
  EXPECT_EQ(kv.free(), 1);
  EXPECT_EQ(kv.host_loads(), 3);
  EXPECT_EQ(kv.host_stores(), 4);  // loaded blocks are cached on the device, and not stored again
  kv.take_transfers(t);
  ASSERT_EQ(t.loads.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(t.loads[i].block, mine[i]);
    EXPECT_EQ(t.loads[i].host_block, host_hits[i].host_block);
  }
  // Back on the device: the next lookup finds them there.
  PrefixKeys again = k;
  again.next();
  EXPECT_EQ(kv.lookup(again, 3).free_blocks, 0);
}

// As vLLM's LRU offloading manager: a sequence that starts touches the host copies of the blocks
// it found, even those it found on the device, its first block last (the most recent); storing a
// key the tier holds does not refresh it.
TEST(KvBlocksHostTierTest, StartingSequencesTouchTheHostCopiesOfTheirBlocksHeadMostRecent) {
  KvBlocks kv(KvCapacity{6, 16, true, 3});
  const Request a = with_ids(make_request(0, 0, 32), {1, 2});
  const Request b = with_ids(make_request(1, 0, 16), {7});
  const Request c = with_ids(make_request(2, 0, 16), {8});
  const Request d = with_ids(make_request(3, 0, 16), {9});
  const auto compute = [&](const Request& r, int blocks) {
    std::vector<KvBlocks::BlockId> table;
    kv.allocate(blocks, table);
    PrefixKeys keys(r.prefix, r.input_tokens, r.id, 16);
    kv.cache(keys, table, blocks);
    kv.release_all(table);
  };
  compute(a, 2);  // host, least recent first: a1 a2
  compute(b, 1);  // a1 a2 b1: full
  // a starts again and finds both blocks on the device: the host order becomes b1 a2 a1.
  PrefixKeys ka(a.prefix, a.input_tokens, a.id, 16);
  std::vector<KvBlocks::BlockId> table;
  std::vector<HostHit> host_hits;
  ASSERT_EQ(kv.take_cached(ka, 2, table, host_hits), 2);
  EXPECT_TRUE(host_hits.empty());
  kv.release_all(table);
  compute(c, 1);  // evicts b1
  compute(d, 1);  // evicts a2
  EXPECT_EQ(kv.host_evictions(), 2);
  // Evict everything from the device, then look through the host tier: a1 is there, a2 and b1 not.
  std::vector<KvBlocks::BlockId> other;
  kv.allocate(6, other);
  kv.release_all(other);
  PrefixKeys again(a.prefix, a.input_tokens, a.id, 16);
  EXPECT_EQ(kv.lookup(again, 2).blocks, 1);
  PrefixKeys kb(b.prefix, b.input_tokens, b.id, 16);
  EXPECT_EQ(kv.lookup(kb, 1).blocks, 0);
  PrefixKeys kd(d.prefix, d.input_tokens, d.id, 16);
  EXPECT_EQ(kv.lookup(kd, 1).blocks, 1);

  // One device block, two host blocks: x, then y (evicting x from the device), then x computed
  // again (evicting y from the device; the tier has x: not stored, not refreshed), then z: the
  // tier evicts x, its least recently used.
  KvBlocks small(KvCapacity{1, 16, true, 2});
  const Request x = with_ids(make_request(4, 0, 16), {11});
  const Request y = with_ids(make_request(5, 0, 16), {12});
  const Request z = with_ids(make_request(6, 0, 16), {13});
  for (const Request* r : {&x, &y, &x, &z}) {
    std::vector<KvBlocks::BlockId> one;
    small.allocate(1, one);
    PrefixKeys keys(r->prefix, r->input_tokens, r->id, 16);
    small.cache(keys, one, 1);
    small.release_all(one);
  }
  EXPECT_EQ(small.host_stores(), 3);
  PrefixKeys kx(x.prefix, x.input_tokens, x.id, 16), ky(y.prefix, y.input_tokens, y.id, 16);
  EXPECT_EQ(small.lookup(kx, 1).blocks, 0);
  EXPECT_EQ(small.lookup(ky, 1).blocks, 1);
}

TEST(KvBlocksHostTierTest, ConfiguredOnlyWithPrefixCachingAndSizedInBlocksOrGigabytes) {
  const auto make = [](const nlohmann::json& params) {
    JsonParams p(params, "policies.batcher");
    return read_continuous_options(p);
  };
  EXPECT_EQ(make({{"prefix_caching", true}, {"host_kv_blocks", 100}}).host_kv_blocks, 100);
  const auto error = [&](const nlohmann::json& params) { return testing::error_of([&] { make(params); }); };
  EXPECT_NE(error({{"host_kv_blocks", 100}}).find("policies.batcher.host_kv_blocks: a host-memory tier keeps "
                                                  "prefix-cache blocks: it needs prefix_caching true"),
            std::string::npos);
  EXPECT_NE(error({{"prefix_caching", true}, {"host_kv_blocks", 100}, {"host_cache_gb", 2}})
                .find("host_kv_blocks or host_cache_gb, not both"),
            std::string::npos);
  EXPECT_NE(error({{"prefix_caching", true}, {"host_cache_gb", -1}}).find("host_cache_gb: must be in [0, 1e6] GB"),
            std::string::npos);
}

// Runs `trace` as run_all does with a host tier of `host_blocks`, and follows what each block
// holds: a step's copies are carried out before it (stores, then loads), then its chunks write
// their blocks. Every sequence must find its own prefix's contents in its blocks when its step
// runs, whichever tier they came from. Returns the cached tokens of each request; `loaded` counts
// the tokens loaded from the host tier.
std::map<RequestId, std::int32_t> run_with_host_tier(const std::vector<Request>& trace, std::int64_t blocks,
                                                     std::int64_t host_blocks, std::int64_t* loaded) {
  ContinuousOptions o = caching_options(blocks);
  o.host_kv_blocks = host_blocks;
  ContinuousBatcher batcher(o);
  WorkerState state(batcher.kv_capacity());
  std::map<KvBlocks::BlockId, std::uint64_t> device;  // the key whose keys and values a block holds
  std::map<std::int32_t, std::uint64_t> host;
  const auto key_at = [](const Sequence& seq, std::int64_t i) {
    PrefixKeys k(seq.request.prefix, seq.request.input_tokens, seq.request.id, 16);
    for (std::int64_t j = 0; j < i; ++j) k.next();
    return k.next();
  };
  std::map<RequestId, std::int32_t> cached;
  std::size_t next = 0;
  TimeUs now = 0;
  KvTransfers t;
  for (int guard = 0; guard < 100000 && (next < trace.size() || !state.empty()); ++guard) {
    for (int k = 0; k < 2 && next < trace.size(); ++k) state.enqueue(trace[next++], now);
    BatchPlan plan = batcher.next(state, now);
    std::vector<Finished> ended = state.begin(plan, now);
    t.clear();
    state.take_kv_transfers(t);
    for (const KvCopy& c : t.stores) {
      EXPECT_TRUE(device.count(c.block)) << "a store of a block never written";
      host[c.host_block] = device[c.block];
    }
    for (const KvCopy& c : t.loads) {
      EXPECT_TRUE(host.count(c.host_block)) << "a load of a host block never stored";
      device[c.block] = host[c.host_block];
    }
    for (const BatchEntry& e : plan.entries) {
      const Sequence& seq = state.get(e.id);
      for (std::int64_t i = 0; i < seq.computed / 16; ++i) {
        EXPECT_EQ(device[seq.blocks[std::size_t(i)]], key_at(seq, i)) << "request " << e.id << " block " << i;
      }
      const std::int64_t end = seq.computed + (e.decode ? 1 : e.prefill_tokens);
      for (std::int64_t i = seq.computed / 16; i < (end + 15) / 16; ++i) device[seq.blocks[std::size_t(i)]] = key_at(seq, i);
    }
    if (!plan.idle()) {
      for (Finished& f : state.finish(plan, ++now)) ended.push_back(std::move(f));
    }
    for (const Finished& f : ended) {
      EXPECT_EQ(f.outcome, Outcome::kCompleted) << f.reason;
      cached[f.seq.request.id] = f.seq.cached_tokens;
    }
    if (::testing::Test::HasFailure()) break;
  }
  EXPECT_TRUE(state.empty());
  EXPECT_EQ(state.kv().free(), state.kv().total());
  EXPECT_LE(state.kv().host_cached(), host_blocks);
  EXPECT_LE(state.kv().host_loads() * 16, state.prefix_stats().host_hit_tokens);  // less the blocks loaded once for two
  *loaded = state.prefix_stats().host_hit_tokens;
  return cached;
}

TEST(KvBlocksHostTierTest, EveryStepFindsItsPrefixContentsWhicheverTierTheyCameFrom) {
  std::int64_t total_loaded = 0;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(seed);
    const auto trace = random_conversations(seed, 60);
    std::int64_t loaded = 0, none = 0;
    const auto with_host = run_with_host_tier(trace, 24, 40, &loaded);
    const auto without = run_with_host_tier(trace, 24, 0, &none);
    EXPECT_EQ(none, 0);
    std::int64_t sum_with = 0, sum_without = 0;
    for (const auto& [id, tokens] : with_host) sum_with += tokens;
    for (const auto& [id, tokens] : without) sum_without += tokens;
    EXPECT_GE(sum_with, sum_without);  // the host tier only adds hits
    total_loaded += loaded;
    if (HasFailure()) return;
  }
  EXPECT_GT(total_loaded, 0);
}

// The simulator counts blocks; the runtime names them: the same plans keep the same counts, and
// the named blocks of the running sequences are distinct.
TEST(WorkerStateTablesTest, NamingBlocksChangesNoCountAndNoBlockIsHeldTwice) {
  ContinuousOptions o;
  o.max_num_batched_tokens = 128;
  o.max_num_seqs = 6;
  o.kv_blocks = 20;
  ContinuousBatcher batcher(o);
  WorkerState counted(batcher.kv_capacity()), named(batcher.kv_capacity(), /*block_tables=*/true);
  const auto trace = random_conversations(3, 40);
  std::size_t next = 0;
  for (TimeUs now = 0; now < 100000 && (next < trace.size() || !named.empty()); ++now) {
    for (int k = 0; k < 2 && next < trace.size(); ++k, ++next) {
      counted.enqueue(trace[next], now);
      named.enqueue(trace[next], now);
    }
    const BatchPlan plan = batcher.next(named, now);
    counted.begin(plan, now);
    named.begin(plan, now);
    counted.finish(plan, now);
    named.finish(plan, now);
    ASSERT_EQ(counted.kv().free(), named.kv().free());
    std::set<KvBlocks::BlockId> seen;
    for (RequestId id : named.running()) {
      const Sequence& seq = named.get(id);
      ASSERT_EQ(static_cast<std::int64_t>(seq.blocks.size()), seq.kv_blocks());
      EXPECT_EQ(counted.get(id).kv_blocks(), seq.kv_blocks());
      EXPECT_TRUE(counted.get(id).blocks.empty());
      for (KvBlocks::BlockId b : seq.blocks) {
        EXPECT_TRUE(b >= 0 && b < 20) << b;
        EXPECT_TRUE(seen.insert(b).second) << "block " << b << " held twice";
      }
    }
  }
  EXPECT_TRUE(named.empty());
  EXPECT_EQ(named.kv().free(), 20);
}

TEST(PrefixReuseTest, MatchesAWorkerWithAnUnboundedCacheServingOneRequestAtATime) {
  for (std::uint64_t seed = 1; seed <= 10; ++seed) {
    SCOPED_TRACE(seed);
    const auto trace = random_conversations(seed, 50);
    PrefixReuse reuse(16);
    WorkerState state(KvCapacity{100000, 16, true});
    for (const Request& r : trace) {
      const std::int64_t expected = reuse.add(r);
      state.enqueue(r, 0);
      const std::int64_t hit = state.prefix_hit(state.get(r.id)).blocks * 16;
      EXPECT_EQ(hit, expected);
      const BatchPlan plan = iteration({BatchEntry{r.id, static_cast<std::int32_t>(prompt_length(r) - hit), false}});
      state.begin(plan, 0);
      state.finish(plan, 0);
      while (!state.empty()) {
        const BatchPlan decode = state.decode_all_plan();
        state.begin(decode, 0);
        state.finish(decode, 0);
      }
    }
  }
}

}  // namespace
}  // namespace twinfer

namespace twinfer {
namespace {

// A copied worker state (the tests of the batchers copy them) reads its own requests' ids: the copy
// caches the same keys after the original is gone.
TEST(WorkerStatePrefixTest, ACopiedStateKeepsCachingTheSameKeys) {
  auto original = std::make_unique<WorkerState>(KvCapacity{100, 16, true});
  const Request a = with_ids(make_request(0, 0, 64, 3), {1, 2, 3, 4});
  original->enqueue(a, 0);
  original->begin(iteration({BatchEntry{0, 32, false}}), 0);
  original->finish(iteration({BatchEntry{0, 32, false}}), 1);
  WorkerState copy = *original;
  original.reset();
  copy.begin(iteration({BatchEntry{0, 32, false}}), 1);
  copy.finish(iteration({BatchEntry{0, 32, false}}), 2);
  copy.enqueue(with_ids(make_request(1, 0, 64, 1), {1, 2, 3, 9}), 2);
  EXPECT_EQ(copy.prefix_hit(copy.get(1)).blocks, 3);
}

}  // namespace
}  // namespace twinfer
