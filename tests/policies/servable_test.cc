#include "policies/servable.h"

#include <gtest/gtest.h>

#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;
using testing::test_device;
using testing::test_model;
using testing::ViewBuilder;

void set_kv(WorkerView& w, std::int64_t blocks, std::int32_t block_tokens) {
  w.kv_blocks_total = blocks;
  w.kv_blocks_free = blocks;
  w.kv_block_tokens = block_tokens;
}

TEST(Servable, PeakKvTokensCountAtLeastOnePromptAndOneOutputToken) {
  EXPECT_EQ(peak_kv_tokens(make_request(1, 0, 100, 10)), 110);
  EXPECT_EQ(peak_kv_tokens(make_request(2, 0, 0, 0)), 2);
  EXPECT_EQ(peak_kv_tokens(make_request(3, 0, 7, 1)), 8);
}

TEST(Servable, PeakKvBlocksRoundsUp) {
  const KvBlocks kv(KvCapacity{10, 16});
  EXPECT_EQ(peak_kv_blocks(make_request(1, 0, 100, 10), kv), 7);  // 110 / 16 = 6.9
  EXPECT_EQ(peak_kv_blocks(make_request(2, 0, 22, 10), kv), 2);   // 32 exactly
}

TEST(Servable, NoWorkerServesTheModel) {
  ViewBuilder b;
  b.add_worker();
  EXPECT_EQ(unservable_reason(make_request(1, 0, 100, 10, "x"), b.view()), "no worker serves model 'x'");
  EXPECT_EQ(unservable_reason(make_request(2, 0, 100, 10, "m"), b.view()), "");
  EXPECT_EQ(unservable_reason(make_request(3, 0, 100, 10, ""), b.view()), "");
  ViewBuilder empty;
  EXPECT_EQ(unservable_reason(make_request(4), empty.view()), "no worker serves any model");
}

TEST(Servable, NeedsMoreKvThanTheLargestCacheOfItsModel) {
  ViewBuilder b;
  b.add_worker().add_worker().add_worker(test_device(), test_model("big"));
  set_kv(b.worker(0), 4, 16);   // 64 tokens
  set_kv(b.worker(1), 5, 20);   // 100 tokens
  set_kv(b.worker(2), 100, 16); // another model: does not count
  EXPECT_EQ(unservable_reason(make_request(1, 0, 100, 10, "m"), b.view()),
            "needs 110 tokens of KV cache (input + output); the largest KV cache for model 'm' holds 100");
  EXPECT_EQ(unservable_reason(make_request(2, 0, 90, 10, "m"), b.view()), "");  // 100 fits worker 1 exactly
  EXPECT_EQ(unservable_reason(make_request(3, 0, 100, 10, "big"), b.view()), "");
}

ModelSpec model_with_context(const std::string& name, int max_context) {
  ModelSpec m = test_model(name);
  m.max_context = max_context;
  return m;
}

TEST(Servable, LongerThanTheContextOfEveryWorkerOfItsModel) {
  ViewBuilder b;
  b.add_worker(test_device(), model_with_context("m", 1000));
  b.add_worker(test_device(), model_with_context("m", 1200));
  b.add_worker(test_device(), model_with_context("other", 100000));  // another model: does not count
  EXPECT_EQ(unservable_reason(make_request(1, 0, 1190, 10, "m"), b.view()), "");  // 1200 fits worker 1 exactly
  EXPECT_EQ(unservable_reason(make_request(2, 0, 1191, 10, "m"), b.view()),
            "needs 1201 tokens of context (input + output); the longest context of model 'm' is 1200 (max_context)");
  EXPECT_EQ(unservable_reason(make_request(3, 0, 1, 1200, "m"), b.view()),
            "needs 1201 tokens of context (input + output); the longest context of model 'm' is 1200 (max_context)");
}

// A prompt given as token ids runs only where the model's vocabulary holds every id (the runtime
// embeds them), so the simulator refuses it too, and a larger-vocabulary worker still serves it.
TEST(Servable, APromptTokenIdOutsideEveryServingModelsVocabularyIsRefused) {
  ModelSpec small = test_model("m");
  small.vocab = 1000;
  ModelSpec large = test_model("m");
  large.vocab = 2000;
  ViewBuilder one;
  one.add_worker(test_device(), small);
  Request r = make_request(1, 0, 3, 10, "m");
  r.prefix = BlockHashes::from_tokens({5, 999, 0}, 16);
  EXPECT_EQ(unservable_reason(r, one.view()), "");
  r.prefix = BlockHashes::from_tokens({5, 1000, 0}, 16);
  EXPECT_EQ(unservable_reason(r, one.view()),
            "prompt token id 1000 is outside the vocabulary of model 'm' (1000 tokens)");
  ViewBuilder two;
  two.add_worker(test_device(), small).add_worker(test_device(), large);
  EXPECT_EQ(unservable_reason(r, two.view()), "");
  r.prefix = BlockHashes::from_tokens({5, 2000, 0}, 16);
  EXPECT_EQ(unservable_reason(r, two.view()),
            "prompt token id 2000 is outside the vocabulary of model 'm' (2000 tokens)");
}

// A trace may hold a row without prompt tokens; no model can start from nothing, and every engine
// refuses it here, before it reaches a worker (where it once crashed the process).
TEST(Servable, APromptOfNoTokensIsRefusedWithItsReason) {
  ViewBuilder b;
  b.add_worker(test_device(), model_with_context("m", 1000));
  EXPECT_EQ(unservable_reason(make_request(1, 0, 0, 10, "m"), b.view()),
            "a prompt of 0 tokens: a request needs at least one prompt token");
  EXPECT_EQ(unservable_reason(make_request(2, 0, -3, 10, "m"), b.view()),
            "a prompt of -3 tokens: a request needs at least one prompt token");
  EXPECT_EQ(unservable_reason(make_request(3, 0, 1, 0, "m"), b.view()), "");  // no output: a prefill alone
}

TEST(Servable, TheKvCacheCountsOnlyOnWorkersWhoseContextHoldsTheRequest) {
  ViewBuilder b;
  b.add_worker(test_device(), model_with_context("m", 1000));
  b.add_worker(test_device(), model_with_context("m", 4000));
  set_kv(b.worker(0), 1000, 16);  // room for 16000 tokens, but a context of 1000
  set_kv(b.worker(1), 100, 16);   // a context of 4000, room for 1600 tokens
  EXPECT_EQ(unservable_reason(make_request(1, 0, 1500, 100, "m"), b.view()), "");
  EXPECT_EQ(unservable_reason(make_request(2, 0, 1600, 100, "m"), b.view()),
            "needs 1700 tokens of KV cache (input + output); the largest KV cache for model 'm' holds 1600");
  EXPECT_EQ(unservable_reason(make_request(3, 0, 900, 50, "m"), b.view()), "");  // fits both
}

TEST(Servable, DownWorkersCountAndUntrackedWorkersHoldAnything) {
  ViewBuilder b;
  const ModelSpec long_context = model_with_context("m", 1 << 20);
  b.add_worker(test_device(), long_context).add_worker(test_device(), long_context);
  set_kv(b.worker(0), 4, 16);
  set_kv(b.worker(1), 1000, 16);
  b.worker(1).health = Health::kDown;  // may come back
  EXPECT_EQ(unservable_reason(make_request(1, 0, 100, 10), b.view()), "");
  set_kv(b.worker(1), 1000, 0);        // KV not tracked: anything its context holds
  EXPECT_EQ(unservable_reason(make_request(2, 0, 5000, 10), b.view()), "");
  set_kv(b.worker(1), 0, 16);          // not an LLM batcher
  EXPECT_EQ(unservable_reason(make_request(3, 0, 5000, 10), b.view()), "");
}

}  // namespace
}  // namespace twinfer
