#include "runtime/engine/worker_engine.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cmath>
#include <thread>

#include "core/error.h"
#include "runtime/engine/cpu_affinity.h"
#include "serving/lifecycle_reasons.h"

namespace twinfer::runtime {
namespace {
constexpr double kUtilizationTauUs = 1e6;
}

WorkerEngine::WorkerEngine(WorkerParts parts, WorkerCallbacks callbacks)
    : parts_(std::move(parts)),
      callbacks_(std::move(callbacks)),
      state_(parts_.batcher->kv_capacity(), /*block_tables=*/true),
      kv_events_(new_kv_event_log_id()) {
  state_.record_kv_events(state_.kv().prefix_caching());
  view_.index = parts_.index;
  view_.instance = parts_.instance;
  view_.kv_blocks_total = state_.kv().total();
  view_.kv_blocks_free = state_.kv().free();
  view_.kv_block_tokens = parts_.batcher->kv_capacity().block_tokens;
}

WorkerEngine::~WorkerEngine() { stop(); }

void WorkerEngine::start(int core) {
  thread_ = std::thread([this, core] {
    if (core >= 0) pin_current_thread(core);
    loop();
  });
}

void WorkerEngine::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void WorkerEngine::submit(const Request& request) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    assert(!crashed_);
    inbox_.push_back(Inbound{request, false});
    ++view_.waiting;
    view_.outstanding_work_us += request_work_us(*parts_.cost, *parts_.instance, request.input_tokens,
                                                 request.output_tokens);
  }
  cv_.notify_one();
}

WorkerView WorkerEngine::view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

void WorkerEngine::set_slowdown(double factor) {
  assert(factor >= 1);
  std::lock_guard<std::mutex> lock(mu_);
  slowdown_ = factor;
}

void WorkerEngine::set_device_error(bool on) { device_error_ = on; }

void WorkerEngine::cancel(RequestId id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (crashed_) return;
    Inbound m;
    m.request.id = id;
    m.cancel = true;
    inbox_.push_back(std::move(m));
  }
  cv_.notify_one();
}

std::vector<Request> WorkerEngine::crash() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (crashed_) return {};
    crashed_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The thread is gone: what it owned is ours to discard.
  std::vector<Request> lost;
  for (Sequence& s : state_.clear()) lost.push_back(s.request);
  std::lock_guard<std::mutex> lock(mu_);
  for (const Inbound& m : inbox_) {
    if (!m.cancel) {
      lost.push_back(m.request);
      continue;
    }
    lost.erase(std::remove_if(lost.begin(), lost.end(), [&](const Request& r) { return r.id == m.request.id; }),
               lost.end());
  }
  inbox_.clear();
  tokens_.clear();
  work_us_.clear();
  parts_.backend.reset();
  view_.health = Health::kDown;
  view_.waiting = view_.running = 0;
  view_.outstanding_work_us = 0;
  view_.kv_blocks_free = view_.kv_blocks_total;
  return lost;
}

// Submissions and cancellations are applied in the order they were sent, so that a cancel
// right after a submission removes it and a retry sent after a cancel is not removed by it.
void WorkerEngine::take_inbox(TimeUs now) {
  std::vector<Inbound> arrived;
  {
    std::lock_guard<std::mutex> lock(mu_);
    arrived.swap(inbox_);
  }
  for (const Inbound& m : arrived) {
    const Request& r = m.request;
    if (tokens_.count(r.id) && state_.cancel(r.id)) forget(r.id);
    if (m.cancel) continue;
    state_.enqueue(r, now);
    tokens_[r.id] = prompt_tokens(r, parts_.vocab);
    work_us_[r.id] = request_work_us(*parts_.cost, *parts_.instance, r.input_tokens, r.output_tokens);
  }
}

void WorkerEngine::forget(RequestId id) {
  tokens_.erase(id);
  {
    std::lock_guard<std::mutex> lock(mu_);
    view_.outstanding_work_us -= work_us_[id];
  }
  work_us_.erase(id);
}

void WorkerEngine::pause_after_step(TimeUs step_us) {
  double factor;
  {
    std::lock_guard<std::mutex> lock(mu_);
    factor = slowdown_;
  }
  if (factor <= 1 || step_us <= 0) return;
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::microseconds(static_cast<TimeUs>((factor - 1) * double(step_us)));
  // A crash cuts the pause short; nothing else does.
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, until, [this] { return crashed_.load(); });
}

void WorkerEngine::end(std::vector<Finished>& ended, TimeUs now) {
  for (const Finished& f : ended) {
    forget(f.seq.request.id);
    if (f.outcome == Outcome::kCompleted) {
      std::lock_guard<std::mutex> lock(mu_);
      double latency = double(now - f.seq.request.arrival_us);
      view_.latency_ewma_us = view_.latency_ewma_us == 0 ? latency : 0.9 * view_.latency_ewma_us + 0.1 * latency;
    }
    callbacks_.on_end(parts_.index, f, now);
  }
}

bool WorkerEngine::read_kv_events(KvEventCursor& cursor, std::vector<KvEvent>& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  return kv_events_.read(cursor, out);
}

void WorkerEngine::publish_view(bool busy, TimeUs now) {
  recorded_.clear();
  state_.take_kv_events(recorded_);
  std::lock_guard<std::mutex> lock(mu_);
  kv_events_.append(recorded_);
  const auto submitted = std::count_if(inbox_.begin(), inbox_.end(), [](const Inbound& m) { return !m.cancel; });
  view_.waiting = static_cast<int>(state_.waiting().size() + std::size_t(submitted));
  view_.running = static_cast<int>(state_.running().size());
  view_.kv_blocks_free = state_.kv().free();
  view_.prefix_queried_tokens = state_.prefix_stats().queried_tokens;
  view_.prefix_hit_tokens = state_.prefix_stats().hit_tokens;
  view_.prefix_evictions = state_.kv().evictions();
  view_.prefix_host_hit_tokens = state_.prefix_stats().host_hit_tokens;
  double dt = double(now - util_updated_us_);
  if (dt > 0) {
    double keep = std::exp(-dt / kUtilizationTauUs);
    // `busy` tells what the worker did since the last update.
    view_.utilization_ewma = view_.utilization_ewma * keep + (busy ? 1.0 : 0.0) * (1.0 - keep);
    util_updated_us_ = now;
  }
}

StepSequence WorkerEngine::step_for(const BatchEntry& entry) const {
  const Sequence& seq = state_.get(entry.id);
  const std::vector<std::int32_t>& all = tokens_.at(entry.id);
  StepSequence s;
  s.id = entry.id;
  s.cached = seq.computed;
  s.blocks = seq.blocks;
  if (entry.prefill_tokens > 0) {
    // After a preemption the recompute covers the prompt and the tokens generated so far.
    s.tokens.assign(all.begin() + seq.computed, all.begin() + seq.computed + entry.prefill_tokens);
    s.sample = seq.computed + entry.prefill_tokens == seq.prefill_target;
  } else {
    s.tokens.push_back(all.back());
    s.sample = true;
  }
  return s;
}

void WorkerEngine::run_iteration(const BatchPlan& plan) {
  std::vector<StepSequence> batch;
  batch.reserve(plan.entries.size());
  for (const auto& e : plan.entries) batch.push_back(step_for(e));
  std::vector<std::int32_t> next;
  parts_.backend->step(batch, next);
  std::size_t k = 0;
  for (const auto& s : batch) {
    if (s.sample) tokens_[s.id].push_back(next.at(k++));
  }
}

void WorkerEngine::run_request_batch(const BatchPlan& plan) {
  bool generative = false;
  for (const auto& e : plan.entries) generative |= state_.get(e.id).request.output_tokens > 1;
  if (!generative) {
    std::vector<std::int32_t> lengths;
    std::int32_t longest = 0;
    for (const auto& e : plan.entries) {
      lengths.push_back(e.prefill_tokens);
      longest = std::max(longest, e.prefill_tokens);
    }
    std::int32_t padded = plan.padded_input_tokens > 0
                              ? static_cast<std::int32_t>(plan.padded_input_tokens / std::max<std::size_t>(1, lengths.size()))
                              : 0;
    parts_.backend->encode(lengths, std::max(padded, longest));
    return;
  }
  // Static batching: every prompt whole, then decode steps until the longest output is done. A
  // batcher that does not track KV memory leaves the blocks to the batch: consecutive ranges of
  // the backend's pool, one per entry, while it runs (one past the pool fails that entry alone).
  std::vector<std::vector<std::int32_t>> tables(plan.entries.size());
  std::int32_t next_block = 0;
  for (std::size_t i = 0; i < plan.entries.size(); ++i) {
    const Sequence& seq = state_.get(plan.entries[i].id);
    if (state_.kv().tracked()) {
      tables[i] = seq.blocks;
      continue;
    }
    const auto blocks = static_cast<std::int32_t>(
        state_.kv().blocks_for(std::int64_t{seq.request.input_tokens} + seq.output_target()));
    for (std::int32_t b = 0; b < blocks; ++b) tables[i].push_back(next_block++);
  }
  std::vector<StepSequence> batch;
  std::vector<std::int32_t> next;
  for (std::size_t i = 0; i < plan.entries.size(); ++i) {
    StepSequence s;
    s.id = plan.entries[i].id;
    s.tokens = tokens_.at(s.id);
    s.blocks = tables[i];
    batch.push_back(std::move(s));
  }
  parts_.backend->step(batch, next);
  std::vector<std::int32_t> produced(plan.entries.size(), 1);
  for (std::size_t i = 0; i < batch.size(); ++i) tokens_[batch[i].id].push_back(next[i]);
  for (;;) {
    batch.clear();
    for (std::size_t i = 0; i < plan.entries.size(); ++i) {
      const RequestId id = plan.entries[i].id;
      if (produced[i] >= state_.get(id).output_target()) continue;
      const auto& all = tokens_.at(id);
      StepSequence s;
      s.id = id;
      s.cached = static_cast<std::int32_t>(all.size()) - 1;
      s.tokens.push_back(all.back());
      s.blocks = tables[i];
      batch.push_back(std::move(s));
      ++produced[i];
    }
    if (batch.empty()) break;
    parts_.backend->step(batch, next);
    for (std::size_t i = 0; i < batch.size(); ++i) tokens_[batch[i].id].push_back(next[i]);
  }
}

// A sequence the backend refuses ends dropped with the backend's reason, and the step runs again
// without it: its batch-mates go on. A request batch that decoded before the refusal starts over
// from its prompts.
void WorkerEngine::run_plan(BatchPlan& plan, TimeUs now) {
  if (device_error_) throw Error(reasons::kInjectedDeviceError);
  if (state_.has_kv_transfers()) {
    transfers_.clear();
    state_.take_kv_transfers(transfers_);
    parts_.backend->copy_kv(transfers_);
  }
  for (;;) {
    try {
      if (plan.kind == BatchKind::kIteration) {
        run_iteration(plan);
      } else {
        run_request_batch(plan);
      }
      return;
    } catch (const SequenceError& e) {
      std::vector<Finished> failed;
      failed.push_back(state_.fail_entry(plan, e.id(), e.what()));
      end(failed, now);
      if (plan.kind == BatchKind::kRequestBatch) {
        for (const BatchEntry& entry : plan.entries) {
          tokens_[entry.id].resize(std::size_t(state_.get(entry.id).request.input_tokens));
        }
      }
      if (plan.idle()) return;
    }
  }
}

void WorkerEngine::loop() {
  try {
    serve();
  } catch (const std::exception& e) {
    fail(reasons::worker_failed(parts_.instance->name, e.what()));
  }
}

std::string WorkerEngine::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

// A failed step (a backend error, a policy's exception) must not lose requests nor take the
// process down. The sequences it was running (the failed step's) end dropped with the reason: any
// of them may have caused it, and sent elsewhere it would fail the next worker too. The worker
// reports itself down, so that routers send nothing more, and holds what it has not started for
// crash() to give back (their sender may place them elsewhere); a stop() with nobody to claim
// them drops them.
void WorkerEngine::fail(const std::string& reason) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    failure_ = reason;  // failure() tells the ends below from the worker's other drops
    view_.health = Health::kDown;
  }
  TimeUs now = parts_.clock->now_us();
  auto dropped = state_.fail_running(reason);
  end(dropped, now);
  publish_view(false, now);
  if (callbacks_.on_failed) callbacks_.on_failed(parts_.index, reason);
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return stopping_ || crashed_; });
    if (crashed_) return;
  }
  // Stopped with nobody to claim them.
  now = parts_.clock->now_us();
  take_inbox(now);
  BatchPlan drop;
  for (RequestId id : state_.waiting()) drop.drop.push_back(BatchDrop{id, reason});
  dropped = state_.begin(drop, now);
  end(dropped, now);
}

void WorkerEngine::serve() {
  const Clock& clock = *parts_.clock;
  TimeUs wake_at = kNever;
  for (;;) {
    if (crashed_) return;
    TimeUs now = clock.now_us();
    take_inbox(now);
    BatchPlan plan;
    try {
      if (parts_.admission->may_drop_before_start()) {
        auto dropped = state_.purge_waiting(*parts_.admission, now);
        end(dropped, now);
      }
      plan = parts_.batcher->next(state_, now);
    } catch (const std::exception& e) {
      if (callbacks_.on_policy_error) callbacks_.on_policy_error(parts_.index, e.what());
      throw;
    }
    auto dropped = state_.begin(plan, now);
    end(dropped, now);
    if (plan.idle()) {
      last_step_end_us_ = -1;
      publish_view(false, now);
      wake_at = plan.wake_at_us;
      std::unique_lock<std::mutex> lock(mu_);
      auto news = [this] { return !inbox_.empty() || stopping_ || crashed_; };
      if (!inbox_.empty() || crashed_) continue;
      if (stopping_ && state_.empty()) return;
      if (wake_at == kNever) {
        cv_.wait(lock, news);
      } else if (wake_at > now) {
        cv_.wait_for(lock, std::chrono::microseconds(wake_at - now), news);
      }
      continue;
    }
    publish_view(false, now);
    const TimeUs start = now;
    run_plan(plan, now);
    pause_after_step(clock.now_us() - start);
    if (crashed_) return;  // what this step produced is lost with the worker
    now = clock.now_us();
    BatchRecord record = BatchRecord::of(parts_.index, plan, state_, start, now);
    if (last_step_end_us_ >= 0) record.engine_us = start - last_step_end_us_;
    last_step_end_us_ = now;
    auto completed = state_.finish(plan, now);
    callbacks_.on_batch(record);
    end(completed, now);
    publish_view(true, now);
  }
}

}  // namespace twinfer::runtime
