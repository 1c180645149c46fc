#include "runtime/engine/worker_engine.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "core/error.h"
#include "policies/registry.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/engine/steady_clock.h"
#include "tests/runtime/runtime_testing.h"

namespace twinfer::runtime {
namespace {

// Forwards to a real backend and throws at its `fail_at`-th step (STYLE.md rule 6).
class FailingBackend : public Backend {
 public:
  FailingBackend(std::unique_ptr<Backend> inner, int fail_at) : inner_(std::move(inner)), fail_at_(fail_at) {}
  void step(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next) override {
    if (++steps_ == fail_at_) throw Error("injected fault");
    inner_->step(batch, next);
  }
  const std::vector<float>& last_logits() const override { return inner_->last_logits(); }
  std::vector<float> encode(const std::vector<std::int32_t>& l, std::int32_t p) override { return inner_->encode(l, p); }
  void copy_kv(const KvTransfers& copies) override { inner_->copy_kv(copies); }
  std::string name() const override { return "failing"; }

 private:
  std::unique_ptr<Backend> inner_;
  int fail_at_;
  int steps_ = 0;
};

// One worker on the CPU backend with the given batcher spec; collects what ends.
class WorkerHarness {
 public:
  explicit WorkerHarness(const nlohmann::json& batcher_spec, const nlohmann::json& admission_spec = "accept_all",
                         int fail_at_step = 0, const std::vector<std::string>& config_overrides = {}) {
    config_ = testing::cpu_tiny_config(config_overrides);
    PolicyContext ctx;
    cost_ = cost_model_registry().make(config_.cost_model, ctx, "cost");
    ctx.cost = cost_.get();
    admission_ = admission_registry().make(admission_spec, ctx, "admission");
    const InstanceSpec& inst = config_.cluster.instances[0];
    ctx.instance = &inst;
    WorkerParts parts;
    parts.index = 0;
    parts.instance = &inst;
    parts.batcher = batcher_registry().make(batcher_spec, ctx, "batcher");
    TransformerConfig model = TransformerConfig::from_model(inst.model);
    BackendLimits limits;
    KvCapacity kv = parts.batcher->kv_capacity();
    limits.kv_blocks = kv.blocks_total > 0 ? kv.blocks_total : 512;
    limits.block_tokens = kv.block_tokens;
    parts.backend = make_cpu_backend(model, limits);
    if (fail_at_step > 0) parts.backend = std::make_unique<FailingBackend>(std::move(parts.backend), fail_at_step);
    backend_ = parts.backend.get();
    parts.admission = admission_.get();
    parts.cost = cost_.get();
    parts.clock = &clock_;
    parts.vocab = model.vocab;
    WorkerCallbacks cb;
    cb.on_end = [this](int, const Finished& f, TimeUs end_us) {
      std::lock_guard<std::mutex> lock(mu_);
      ended_.push_back(f);
      ends_us_.push_back(end_us);
      cv_.notify_all();
    };
    cb.on_batch = [this](const BatchRecord& b) {
      std::lock_guard<std::mutex> lock(mu_);
      step_us_.push_back(b.end_us - b.start_us);
      ++batches_;
    };
    cb.on_failed = [this](int, const std::string& why) {
      if (on_failed_) on_failed_(why);
      std::lock_guard<std::mutex> lock(mu_);
      failed_ = true;
      cv_.notify_all();
    };
    engine_ = std::make_unique<WorkerEngine>(std::move(parts), cb);
    engine_->start();
  }

  void submit_all(const Trace& t) {
    for (const auto& r : t.requests) engine_->submit(r);
  }
  void wait_for(std::size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(60), [&] { return ended_.size() >= n; }))
        << "only " << ended_.size() << " of " << n << " requests ended";
  }

  void wait_failed() {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(60), [&] { return failed_; })) << "the worker never failed";
  }

  std::function<void(const std::string&)> on_failed_;  // set before the failure
  bool failed_ = false;                                // guarded by mu_
  RunConfig config_;
  std::unique_ptr<CostModel> cost_;
  std::unique_ptr<Admission> admission_;
  SteadyClock clock_;
  Backend* backend_ = nullptr;
  std::unique_ptr<WorkerEngine> engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Finished> ended_;
  std::vector<TimeUs> ends_us_;
  std::vector<TimeUs> step_us_;  // guarded by mu_
  std::atomic<int> batches_{0};
};

TEST(WorkerEngine, ContinuousBatchingCompletesEveryRequestOnceAndReturnsItsCache) {
  WorkerHarness h(nlohmann::json{{"name", "continuous"}, {"kv_blocks", 256}, {"max_num_batched_tokens", 256}});
  Trace t = testing::small_trace(24, 1000);
  h.submit_all(t);
  h.wait_for(t.requests.size());
  h.engine_->stop();
  std::set<RequestId> ids;
  for (const auto& f : h.ended_) {
    EXPECT_EQ(f.outcome, Outcome::kCompleted);
    EXPECT_EQ(f.seq.generated, f.seq.output_target());
    EXPECT_GE(f.seq.first_token_us, f.seq.started_us);
    ids.insert(f.seq.request.id);
  }
  EXPECT_EQ(ids.size(), t.requests.size());
  EXPECT_EQ(h.engine_->view().kv_blocks_free, h.engine_->view().kv_blocks_total);
  WorkerView v = h.engine_->view();
  EXPECT_EQ(v.kv_blocks_free, v.kv_blocks_total);
  EXPECT_EQ(v.waiting + v.running, 0);
  EXPECT_LT(h.batches_.load(), 24 * 30) << "sequences must share iterations";
}

TEST(WorkerEngine, KvPressurePreemptsAndRecomputesOnRealKernels) {
  // 16 blocks of 16 tokens: far less than 12 sequences of up to ~150 tokens need at once.
  WorkerHarness h(nlohmann::json{{"name", "continuous"}, {"kv_blocks", 16}, {"max_num_batched_tokens", 256}});
  Trace t = testing::small_trace(12, 1000, 9, 40);
  h.submit_all(t);
  h.wait_for(t.requests.size());
  h.engine_->stop();
  int preemptions = 0, completed = 0;
  for (const auto& f : h.ended_) {
    preemptions += f.seq.preemptions;
    completed += f.outcome == Outcome::kCompleted;
  }
  EXPECT_GT(preemptions, 0);
  EXPECT_EQ(completed, static_cast<int>(h.ended_.size()));
  EXPECT_EQ(h.ended_.size(), t.requests.size());
  EXPECT_EQ(h.engine_->view().kv_blocks_free, h.engine_->view().kv_blocks_total);
}

TEST(WorkerEngine, RequestLevelBatchesRunGenerativeAndEncoderRequests) {
  WorkerHarness h(nlohmann::json{{"name", "request_level"}, {"max_batch_size", 4}, {"max_queue_delay_us", 2000}});
  Trace t = testing::small_trace(10, 1000);
  for (std::size_t i = 0; i < t.requests.size(); i += 2) t.requests[i].output_tokens = 1;  // encoder-style
  h.submit_all(t);
  h.wait_for(t.requests.size());
  h.engine_->stop();
  for (std::size_t i = 0; i < h.ended_.size(); ++i) {
    EXPECT_EQ(h.ended_[i].outcome, Outcome::kCompleted);
    EXPECT_EQ(h.ended_[i].seq.first_token_us, h.ends_us_[i]) << "a request batch returns whole responses";
  }
  EXPECT_EQ(h.ended_.size(), t.requests.size());
  EXPECT_EQ(h.engine_->view().kv_blocks_free, h.engine_->view().kv_blocks_total);
}

TEST(WorkerEngine, DeadlineAdmissionDropsRequestsThatWaitedTooLong) {
  // Deadlines of 1 us after arrival: every request still waiting when the worker gets to it is
  // dropped, with its reason, instead of running.
  WorkerHarness h(nlohmann::json{{"name", "continuous"}, {"kv_blocks", 256}},
                  nlohmann::json{{"name", "deadline"}, {"predictive", false}});
  Trace t = testing::small_trace(8, 1000);
  for (auto& r : t.requests) {
    r.arrival_us = 0;
    r.deadline_us = 1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  h.submit_all(t);
  h.wait_for(t.requests.size());
  h.engine_->stop();
  for (const auto& f : h.ended_) {
    EXPECT_EQ(f.outcome, Outcome::kDropped);
    EXPECT_EQ(f.reason, "deadline passed before start");
  }
  EXPECT_EQ(h.ended_.size(), t.requests.size());
}

// A step that fails with an error no one sequence answers for fails the worker: the sequences it
// was running end dropped with the reason (not to be sent elsewhere), it reports itself down with
// its KV cache free, and what it had not started, or receives afterwards, is given back by crash()
// (whose sender may place it elsewhere). Every request is accounted for exactly once.
TEST(WorkerEngine, AFailedStepDropsItsSequencesAndGivesTheRestBack) {
  WorkerHarness h(nlohmann::json{{"name", "continuous"}, {"kv_blocks", 256}, {"max_num_batched_tokens", 64},
                                 {"max_num_seqs", 4}},
                  "accept_all", /*fail_at_step=*/3);
  std::string failure;
  h.on_failed_ = [&](const std::string& why) { failure = why; };
  Trace t = testing::small_trace(10, 1000);
  for (auto& r : t.requests) r.arrival_us = 0;
  h.submit_all(t);
  h.wait_failed();
  Request later = testing::small_trace(1, 10, 77).requests[0];
  later.id = 100;
  h.engine_->submit(later);  // arrives after the failure
  EXPECT_EQ(failure, "worker cpu/cpu0 failed: injected fault");
  EXPECT_EQ(h.engine_->failure(), failure);
  const WorkerView view = h.engine_->view();
  EXPECT_EQ(view.health, Health::kDown);
  EXPECT_EQ(view.running, 0);
  EXPECT_EQ(view.kv_blocks_free, view.kv_blocks_total);
  const std::vector<Request> back = h.engine_->crash();
  std::set<RequestId> ids;
  {
    std::lock_guard<std::mutex> lock(h.mu_);
    ASSERT_GE(h.ended_.size(), 1u);
    ASSERT_LE(h.ended_.size(), 4u);  // at most max_num_seqs were running
    for (const auto& f : h.ended_) {
      EXPECT_EQ(f.outcome, Outcome::kDropped);
      EXPECT_EQ(f.reason, failure);
      EXPECT_TRUE(ids.insert(f.seq.request.id).second);
    }
  }
  for (const Request& r : back) EXPECT_TRUE(ids.insert(r.id).second) << "request " << r.id << " twice";
  EXPECT_EQ(ids.size(), t.requests.size() + 1);
  EXPECT_EQ(ids.count(100), 1u);
}

// Stopped with nobody to take them back, a failed worker drops what it held with the reason.
TEST(WorkerEngine, AFailedWorkerStoppedDropsWhatItHeld) {
  WorkerHarness h(nlohmann::json{{"name", "continuous"}, {"kv_blocks", 256}, {"max_num_batched_tokens", 64},
                                 {"max_num_seqs", 4}},
                  "accept_all", /*fail_at_step=*/2);
  Trace t = testing::small_trace(8, 1000);
  for (auto& r : t.requests) r.arrival_us = 0;
  h.submit_all(t);
  h.wait_failed();
  h.engine_->stop();
  EXPECT_EQ(h.ended_.size(), t.requests.size());
  for (const auto& f : h.ended_) {
    EXPECT_EQ(f.outcome, Outcome::kDropped);
    EXPECT_EQ(f.reason, "worker cpu/cpu0 failed: injected fault");
  }
}

// A request that the worker's model cannot hold (admission would have rejected it; here it reaches
// the worker directly) fails its step alone: it ends dropped with the backend's reason, the step
// runs again without it, and its batch-mates and later requests complete on a worker that stays up.
TEST(WorkerEngine, ASequencePastMaxContextEndsAloneAndItsBatchMatesGoOn) {
  const std::vector<nlohmann::json> batchers = {
      {{"name", "continuous"}, {"kv_blocks", 256}, {"max_num_batched_tokens", 512}},
      {{"name", "request_level"}, {"max_batch_size", 8}, {"max_queue_delay_us", 2000}}};
  for (const nlohmann::json& batcher : batchers) {
    SCOPED_TRACE(batcher.dump());
    WorkerHarness h(batcher, "accept_all", 0, {"cluster.models.tiny-llm.max_context=200"});
    Trace t = testing::small_trace(6, 1000);  // at most 120 + 24 tokens each
    for (auto& r : t.requests) r.arrival_us = 0;
    t.requests[2].input_tokens = 190;
    t.requests[2].output_tokens = 20;  // its decode reaches 201 tokens
    h.submit_all(t);
    h.wait_for(t.requests.size());
    Request later = testing::small_trace(1, 10, 77).requests[0];
    later.id = 100;
    h.engine_->submit(later);
    h.wait_for(t.requests.size() + 1);
    EXPECT_EQ(h.engine_->view().health, Health::kUp);
    h.engine_->stop();
    ASSERT_EQ(h.ended_.size(), t.requests.size() + 1);
    for (const auto& f : h.ended_) {
      if (f.seq.request.id == 2) {
        EXPECT_EQ(f.outcome, Outcome::kDropped);
        EXPECT_NE(f.reason.find("sequence 2 would reach 201 tokens, over max_context 200"), std::string::npos)
            << f.reason;
      } else {
        EXPECT_EQ(f.outcome, Outcome::kCompleted) << "request " << f.seq.request.id << ": " << f.reason;
        EXPECT_EQ(f.seq.generated, f.seq.output_target());
      }
    }
    EXPECT_EQ(h.engine_->view().kv_blocks_free, h.engine_->view().kv_blocks_total);
  }
}

// The trace `t` again, with ids shifted by `offset` (the same shapes, different requests).
Trace shifted(Trace t, RequestId offset) {
  for (auto& r : t.requests) r.id += offset;
  return t;
}

TEST(WorkerEngine, SlowdownStretchesEveryStepByItsFactor) {
  WorkerHarness h(nlohmann::json{{"name", "continuous"}, {"kv_blocks", 256}, {"max_num_batched_tokens", 256}});
  Trace t = testing::small_trace(8, 1000);
  for (auto& r : t.requests) r.arrival_us = 0;
  auto busy_us = [&](std::size_t from) {
    std::lock_guard<std::mutex> lock(h.mu_);
    TimeUs sum = 0;
    for (std::size_t i = from; i < h.step_us_.size(); ++i) sum += h.step_us_[i];
    return std::make_pair(sum, h.step_us_.size());
  };
  h.submit_all(t);
  h.wait_for(t.requests.size());
  auto normal = busy_us(0);
  h.engine_->set_slowdown(4);
  h.submit_all(shifted(t, 100));
  h.wait_for(2 * t.requests.size());
  auto slowed = busy_us(normal.second);
  h.engine_->set_slowdown(1);
  h.engine_->stop();
  ASSERT_GT(normal.first, 0);
  // Four times as long per step in theory; a wide margin for scheduling noise.
  EXPECT_GT(double(slowed.first) / double(normal.first), 2.0)
      << normal.first << " us in " << normal.second << " steps, then " << slowed.first << " us in "
      << slowed.second - normal.second << " steps";
  for (const auto& f : h.ended_) EXPECT_EQ(f.outcome, Outcome::kCompleted);
}

TEST(WorkerEngine, CancelRemovesRequestsWithoutEndingThemAndFreesTheirCache) {
  WorkerHarness h(nlohmann::json{{"name", "continuous"}, {"kv_blocks", 256}, {"max_num_batched_tokens", 256}});
  h.engine_->set_slowdown(3);  // keeps every sequence resident long enough to be cancelled mid-run
  Trace t = testing::small_trace(10, 1000, 3, 40);
  for (auto& r : t.requests) r.arrival_us = 0;
  h.submit_all(t);
  while (h.batches_.load() < 2) std::this_thread::sleep_for(std::chrono::microseconds(200));
  const std::set<RequestId> cancelled = {0, 5, 9};
  for (RequestId id : cancelled) h.engine_->cancel(id);
  h.engine_->cancel(999);  // not on this worker: nothing happens
  h.wait_for(t.requests.size() - cancelled.size());
  h.engine_->stop();  // finishes whatever is left: a cancelled request still there would end now
  EXPECT_EQ(h.ended_.size(), t.requests.size() - cancelled.size());
  for (const auto& f : h.ended_) {
    EXPECT_EQ(cancelled.count(f.seq.request.id), 0u) << "request " << f.seq.request.id << " was cancelled";
    EXPECT_EQ(f.outcome, Outcome::kCompleted);
  }
  EXPECT_EQ(h.engine_->view().kv_blocks_free, h.engine_->view().kv_blocks_total);
  WorkerView v = h.engine_->view();
  EXPECT_EQ(v.kv_blocks_free, v.kv_blocks_total);
  EXPECT_EQ(v.waiting + v.running, 0);
  EXPECT_EQ(v.outstanding_work_us, 0);
}

TEST(WorkerEngine, CancelRightAfterSubmitMeansTheRequestNeverRuns) {
  WorkerHarness h(nlohmann::json{{"name", "continuous"}, {"kv_blocks", 256}});
  Trace t = testing::small_trace(3, 1000);
  t.requests[0].output_tokens = 60;  // far more steps than the cancel can take to land
  h.engine_->cancel(t.requests[1].id);  // before its submission: a no-op
  for (const auto& r : t.requests) {
    h.engine_->submit(r);
    if (r.id == t.requests[0].id) h.engine_->cancel(r.id);
  }
  h.wait_for(2);
  h.engine_->stop();
  ASSERT_EQ(h.ended_.size(), 2u);
  for (const auto& f : h.ended_) EXPECT_NE(f.seq.request.id, t.requests[0].id);
}

TEST(WorkerEngine, CrashReturnsEverythingItHeldWithoutEndingItAndStopsAtOnce) {
  WorkerHarness h(nlohmann::json{{"name", "continuous"}, {"kv_blocks", 256}, {"max_num_seqs", 4}});
  h.engine_->set_slowdown(3);
  Trace t = testing::small_trace(10, 1000, 3, 40);
  for (auto& r : t.requests) r.output_tokens = 60;  // none can finish before the crash
  h.submit_all(t);
  while (h.batches_.load() < 2) std::this_thread::sleep_for(std::chrono::microseconds(200));
  h.engine_->cancel(t.requests[9].id);  // still queued or taken: either way not lost, not ended
  std::vector<Request> lost = h.engine_->crash();
  const int batches_at_crash = h.batches_.load();
  std::set<RequestId> ids;
  for (const Request& r : lost) ids.insert(r.id);
  EXPECT_EQ(ids.size(), lost.size()) << "each request once";
  EXPECT_EQ(lost.size(), 9u);
  EXPECT_EQ(ids.count(t.requests[9].id), 0u);
  EXPECT_TRUE(h.ended_.empty());
  EXPECT_TRUE(h.engine_->crashed());
  WorkerView v = h.engine_->view();
  EXPECT_EQ(v.health, Health::kDown);
  EXPECT_EQ(v.waiting + v.running, 0);
  EXPECT_TRUE(h.engine_->crash().empty()) << "a second crash has nothing left";
  h.engine_->cancel(t.requests[0].id);  // a no-op on a dead worker
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(h.batches_.load(), batches_at_crash) << "no step after the crash";
  h.engine_->stop();
  EXPECT_TRUE(h.ended_.empty());
}

}  // namespace
}  // namespace twinfer::runtime
