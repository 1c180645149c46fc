#include "runtime/rpc/worker_links.h"

#include <algorithm>
#include <cstdio>

#include "serving/lifecycle_reasons.h"
#include "runtime/rpc/wire.h"

namespace twinfer::runtime {
namespace {

std::chrono::system_clock::time_point after_ms(int ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

// One State call in flight; deleted when answered.
struct StateCall {
  grpc::ClientContext context;
  rpc::StateQuery query;
  rpc::WorkerState state;
  grpc::Status status;
  int worker = 0;
  TimeUs work_sent_us = 0;
  std::unique_ptr<grpc::ClientAsyncResponseReader<rpc::WorkerState>> reader;
};

}  // namespace

grpc::ChannelArguments fast_reconnect_channel_args() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return args;
}

WorkerLinks::WorkerLinks(std::vector<std::string> addresses, std::vector<const InstanceSpec*> instances,
                         LinkOptions options)
    : options_(options), health_(addresses.size(), options.health, monotonic_now_us()) {
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    auto link = std::make_unique<Link>();
    link->address = addresses[i];
    link->instance = instances[i];
    grpc::ChannelArguments args = fast_reconnect_channel_args();
    args.SetMaxReceiveMessageSize(-1);  // Batches() lists may be large
    link->channel = grpc::CreateCustomChannel(addresses[i], channel_credentials(options_.security), args);
    link->stub = rpc::Worker::NewStub(link->channel);
    // State polls (the heartbeats) on a connection of their own: behind thousands of forwarded
    // calls on the request connection they would miss their deadline and call a live worker down.
    grpc::ChannelArguments beat_args = fast_reconnect_channel_args();
    beat_args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    link->heartbeat_stub =
        rpc::Worker::NewStub(grpc::CreateCustomChannel(addresses[i], channel_credentials(options_.security), beat_args));
    links_.push_back(std::move(link));
  }
}

WorkerLinks::~WorkerLinks() { stop(); }

void WorkerLinks::start() {
  // First contact waits for the workers to come up (they may be starting with this process).
  std::vector<std::unique_ptr<StateCall>> calls;
  std::vector<grpc::Status> results(links_.size());
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::size_t done = 0;
  std::vector<bool> monitored;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& link : links_) monitored.push_back(link->monitored);
  }
  for (std::size_t w = 0; w < links_.size(); ++w) {
    calls.push_back(std::make_unique<StateCall>());
    StateCall* c = calls.back().get();
    if (!monitored[w]) {  // not running: nothing to wait for
      results[w] = grpc::Status(grpc::StatusCode::UNAVAILABLE, "not running");
      ++done;
      continue;
    }
    c->context.set_wait_for_ready(true);
    c->context.set_deadline(after_ms(options_.connect_timeout_ms));
    authorize(c->context);
    // The first contact asks for the view only; the polls that follow bring the KV events.
    links_[w]->heartbeat_stub->async()->State(&c->context, &c->query, &c->state, [&, w](grpc::Status s) {
      std::lock_guard<std::mutex> lock(done_mu);
      results[w] = std::move(s);
      ++done;
      done_cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return done == links_.size(); });
  }
  {
    // Heartbeats count from now: the wait for slow starters is no missed beat.
    std::lock_guard<std::mutex> lock(mu_);
    health_ = WorkerHealth(links_.size(), options_.health, monotonic_now_us());
    changes_seen_ = 0;
  }
  for (std::size_t w = 0; w < links_.size(); ++w) {
    if (!monitored[w]) continue;
    if (!results[w].ok() && options_.log) {
      std::fprintf(stderr, "twinfer serve: worker %zu (%s) did not answer at startup: %s\n", w,
                   links_[w]->address.c_str(), results[w].error_message().c_str());
    }
    polled(int(w), results[w], calls[w]->query, calls[w]->state, 0);
  }
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = false;
  beats_ = std::thread([this] { take_beats(); });
  poller_ = std::thread([this] { poll_loop(); });
}

// The State answers, on a thread and completion queue of their own: behind a burst, gRPC's
// callback threads may hold thousands of request callbacks, and a heartbeat that waits behind
// them would call a live worker down.
void WorkerLinks::take_beats() {
  void* tag = nullptr;
  bool ok = false;
  while (beat_cq_.Next(&tag, &ok)) {
    // poll() filled the call in under mu_: taking mu_ orders this thread after it (gRPC's own
    // hand-off through the queue is invisible to ThreadSanitizer).
    { std::lock_guard<std::mutex> lock(mu_); }
    std::unique_ptr<StateCall> call(static_cast<StateCall*>(tag));
    polled(call->worker, call->status, call->query, call->state, call->work_sent_us);
    std::lock_guard<std::mutex> lock(mu_);
    links_[std::size_t(call->worker)]->polling = false;
    if (--polls_pending_ == 0) cv_.notify_all();
  }
}

void WorkerLinks::stop() {
  std::unique_lock<std::mutex> lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  if (poller_.joinable()) {
    lock.unlock();
    poller_.join();
    lock.lock();
  }
  cv_.wait(lock, [this] { return polls_pending_ == 0; });
  if (beat_cq_shut_) return;
  beat_cq_shut_ = true;
  lock.unlock();
  beat_cq_.Shutdown();
  if (beats_.joinable()) {
    beats_.join();
  } else {
    void* tag = nullptr;
    bool ok = false;
    while (beat_cq_.Next(&tag, &ok)) delete static_cast<StateCall*>(tag);
  }
}

void WorkerLinks::poll_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    std::vector<std::pair<int, TimeUs>> due;
    for (std::size_t w = 0; w < links_.size(); ++w) {
      Link& link = *links_[w];
      if (link.polling) continue;
      link.polling = true;
      ++polls_pending_;
      due.emplace_back(int(w), link.work_sent_us);
    }
    std::vector<std::shared_ptr<grpc::ClientContext>> lost = refresh_health(monotonic_now_us());
    lock.unlock();
    for (auto& c : lost) c->TryCancel();
    for (const auto& d : due) poll(d.first, d.second);
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_interval_ms), [this] { return stopping_; });
  }
}

void WorkerLinks::poll(int w, TimeUs work_sent_us) {
  auto* call = new StateCall;
  call->worker = w;
  call->work_sent_us = work_sent_us;
  call->context.set_deadline(after_ms(options_.state_timeout_ms));
  authorize(call->context);
  // Under mu_ (see take_beats()); the queue's calls run no code of ours in this thread.
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = *links_[std::size_t(w)];
  if (kv_events_) {
    call->query.set_kv_events(true);
    call->query.set_kv_events_log(link.kv_cursor.log);
    call->query.set_kv_events_next(link.kv_cursor.next);
  }
  call->reader = link.heartbeat_stub->PrepareAsyncState(&call->context, call->query, &beat_cq_);
  call->reader->StartCall();
  call->reader->Finish(&call->state, &call->status, call);  // take_beats() handles the answer
}

void WorkerLinks::polled(int w, const grpc::Status& s, const rpc::StateQuery& query, const rpc::WorkerState& state,
                         TimeUs work_sent_us) {
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = *links_[w];
  // A failed poll is a missed heartbeat; the monitor counts the misses by time.
  if (!s.ok()) {
    if (link.monitored) link.last_error = s.error_message();
    link.poll_failed = true;
    return;
  }
  if (link.poll_failed) {
    // Back (a restarted process): the request connection, which may still wait out its reconnect
    // backoff after the refusals, connects now, so that the first forward does not fail on it.
    link.poll_failed = false;
    grpc::experimental::ChannelResetConnectionBackoff(link.channel.get());
    link.channel->GetState(/*try_to_connect=*/true);
  }
  // Events that follow the cursor the link still has (not one that follow_kv_events() reset since).
  if (query.kv_events() && query.kv_events_log() == link.kv_cursor.log && query.kv_events_next() == link.kv_cursor.next) {
    get_kv_events(state, link.kv_cursor, link.kv_events);
  }
  const TimeUs now = monotonic_now_us();
  // A failed worker still answers until it exits: its answer is no heartbeat.
  if (state.failure().empty()) health_.beat(w, now);
  link.polled = state;
  link.work_sent_at_poll_us = work_sent_us;
  link.answered_us = now;
  // A worker that reports its own failure is down now, not once its calls fail (once per failure).
  if (!state.failure().empty() && state.failure() != link.failure) {
    link.last_error = state.failure();
    health_.call_failed(w, now, state.failure(), /*hard=*/true);
  }
  link.failure = state.failure();
  const TimeUs busy = state.busy_us();
  link.busy_us += busy >= link.busy_reported_us ? busy - link.busy_reported_us : busy;  // restarted: from 0
  link.busy_reported_us = busy;
}

std::vector<std::shared_ptr<grpc::ClientContext>> WorkerLinks::refresh_health(TimeUs now) {
  for (std::size_t w = 0; w < links_.size(); ++w) {
    if (!links_[w]->monitored) health_.beat(int(w), now);  // not running: not monitored
  }
  health_.refresh(now);
  const auto& changes = health_.changes();
  for (; changes_seen_ < changes.size(); ++changes_seen_) {
    const HealthChange& c = changes[changes_seen_];
    Link& link = *links_[c.worker];
    if (c.to == Health::kDown) ++link.failures;
    if (options_.log) {
      std::fprintf(stderr, "twinfer serve: worker %d (%s) %s -> %s: %s\n", c.worker, link.address.c_str(),
                   health_name(c.from), health_name(c.to), c.why.c_str());
    }
  }
  // Calls on a worker whose heartbeats stopped (partitioned, hung, dead) would otherwise wait for
  // their deadline; a breaker alone does not stop calls already accepted.
  std::vector<std::shared_ptr<grpc::ClientContext>> lost;
  for (std::size_t w = 0; w < links_.size(); ++w) {
    if (health_.heartbeat().health(int(w), now) != Health::kDown) continue;
    for (auto& entry : links_[w]->calls) {
      Link::Call& call = entry.second;
      if (!call.cancelled_because.empty()) continue;
      call.cancelled_because = reasons::worker_unreachable(links_[w]->instance->name, reasons::kHeartbeatLost);
      lost.push_back(call.context);
    }
  }
  return lost;
}

void WorkerLinks::follow_kv_events(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  kv_events_ = on;
  for (auto& link : links_) {
    link->kv_cursor = KvEventCursor{};
    link->kv_events.clear();
  }
}

void WorkerLinks::take_kv_events(int w, std::vector<KvEvent>& out) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<KvEvent>& events = links_[std::size_t(w)]->kv_events;
  out.insert(out.end(), events.begin(), events.end());
  events.clear();
}

std::vector<WorkerView> WorkerLinks::views() const {
  std::lock_guard<std::mutex> lock(mu_);
  const TimeUs now = monotonic_now_us();
  std::vector<WorkerView> out(links_.size());
  for (std::size_t w = 0; w < links_.size(); ++w) {
    const Link& link = *links_[w];
    WorkerView& v = out[w];
    v.index = int(w);
    v.instance = link.instance;
    fill_view(link.polled, v);
    // The poll is a few ms old; the router's own in-flight count is exact for its requests.
    const int polled_total = v.waiting + v.running;
    if (link.in_flight > polled_total) v.waiting += link.in_flight - polled_total;
    v.outstanding_work_us += link.work_sent_us - link.work_sent_at_poll_us;
  }
  health_.apply(out, now);
  return out;
}

void WorkerLinks::forwarded(int w, TimeUs work_us, std::shared_ptr<grpc::ClientContext> call) {
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = *links_[w];
  ++link.in_flight;
  link.work_sent_us += work_us;
  const grpc::ClientContext* key = call.get();
  link.calls.emplace(key, Link::Call{std::move(call), ""});
  health_.call_sent(w, monotonic_now_us());
}

void WorkerLinks::forget(Link& link, const grpc::ClientContext* call) {
  if (link.calls.erase(call) > 0) --link.in_flight;
}

void WorkerLinks::succeeded(int w, const grpc::ClientContext* call, TimeUs latency_us) {
  std::lock_guard<std::mutex> lock(mu_);
  forget(*links_[w], call);
  const TimeUs now = monotonic_now_us();
  health_.call_succeeded(w, latency_us, now);
  health_.beat(w, now);  // an answer is news that it lives, as good as a heartbeat
}

std::string WorkerLinks::failed(int w, const grpc::ClientContext* call, const grpc::Status& s) {
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = *links_[w];
  ++link.forwards_failed;
  auto it = link.calls.find(call);
  std::string reason;
  if (it != link.calls.end() && !it->second.cancelled_because.empty()) {
    // Cancelled here because the heartbeats stopped: already counted against the worker.
    reason = it->second.cancelled_because;
  } else {
    // UNAVAILABLE is gRPC's code for a connection refused or reset: the worker is gone, in the
    // simulator's words; any other failure keeps gRPC's message.
    const bool hard = s.error_code() == grpc::StatusCode::UNAVAILABLE;
    reason = reasons::worker_unreachable(link.instance->name, hard ? reasons::kConnectionRefused : s.error_message());
    health_.call_failed(w, monotonic_now_us(), s.error_message(), hard);
  }
  link.last_error = reason;
  forget(link, call);
  return reason;
}

void WorkerLinks::worker_failed(int w, const grpc::ClientContext* call, const std::string& failure) {
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = *links_[w];
  ++link.forwards_failed;
  link.last_error = failure;
  forget(link, call);
  health_.call_failed(w, monotonic_now_us(), failure, /*hard=*/true);
}

void WorkerLinks::abandoned(int w, const grpc::ClientContext* call) {
  std::lock_guard<std::mutex> lock(mu_);
  forget(*links_[w], call);
}

void WorkerLinks::gather_batches(const rpc::BatchQuery& query, rpc::BatchList* list, int timeout_ms,
                                 std::function<void()> done) {
  // Shared by the calls; the last answer finishes.
  struct Gather {
    std::mutex mu;
    std::size_t pending = 0;
    rpc::BatchQuery query;
    rpc::BatchList* list = nullptr;
    std::function<void()> done;
    struct One {
      grpc::ClientContext context;
      rpc::BatchList reply;
    };
    std::vector<std::unique_ptr<One>> calls;
  };
  if (links_.empty()) {
    done();
    return;
  }
  auto gather = std::make_shared<Gather>();
  gather->query = query;
  gather->list = list;
  gather->done = std::move(done);
  gather->pending = links_.size();
  for (std::size_t w = 0; w < links_.size(); ++w) {
    gather->calls.push_back(std::make_unique<Gather::One>());
    gather->calls.back()->context.set_deadline(after_ms(timeout_ms));
    authorize(gather->calls.back()->context);
  }
  for (std::size_t w = 0; w < links_.size(); ++w) {
    Gather::One* one = gather->calls[w].get();
    links_[w]->stub->async()->Batches(&one->context, &gather->query, &one->reply, [gather, one, w](grpc::Status s) {
      std::unique_lock<std::mutex> lock(gather->mu);
      if (s.ok()) {
        for (auto& b : *one->reply.mutable_batches()) *gather->list->add_batches() = std::move(b);
      } else {
        gather->list->add_errors("worker " + std::to_string(w) + ": " + s.error_message());
      }
      if (--gather->pending > 0) return;
      lock.unlock();
      gather->done();
    });
  }
}

void WorkerLinks::set_monitored(int w, bool monitored) {
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = *links_[std::size_t(w)];
  if (link.monitored == monitored) return;
  link.monitored = monitored;
  if (!monitored) link.answered_us = kNever;
  health_.beat(w, monotonic_now_us());  // its heartbeats count from now
}

TimeUs WorkerLinks::answered_us(int w) const {
  std::lock_guard<std::mutex> lock(mu_);
  return links_[std::size_t(w)]->answered_us;
}

std::vector<TimeUs> WorkerLinks::busy_us() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<TimeUs> out;
  for (const auto& link : links_) out.push_back(link->busy_us);
  return out;
}

void WorkerLinks::reset_health() {
  std::lock_guard<std::mutex> lock(mu_);
  health_ = WorkerHealth(links_.size(), options_.health, monotonic_now_us());
  changes_seen_ = 0;
}

std::vector<LinkStatus> WorkerLinks::status() const {
  std::vector<WorkerView> v = views();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<LinkStatus> out;
  for (std::size_t w = 0; w < links_.size(); ++w) {
    const Link& link = *links_[w];
    LinkStatus s;
    s.index = int(w);
    s.name = link.instance->name;
    s.address = link.address;
    s.health = v[w].health;
    s.up = s.health != Health::kDown;
    s.in_flight = link.in_flight;
    s.failures = link.failures;
    s.forwards_failed = link.forwards_failed;
    s.last_error = link.last_error;
    s.view = v[w];
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace twinfer::runtime
