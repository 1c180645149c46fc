#include "serving/dispatcher.h"

#include <algorithm>
#include <cassert>

#include "policies/batcher.h"
#include "serving/lifecycle_reasons.h"

namespace twinfer {

Dispatcher::Dispatcher(DispatcherParts parts, Carrier& carrier)
    : parts_(std::move(parts)),
      carrier_(carrier),
      requests_(parts_.requests ? *parts_.requests : owned_),
      protection_(*parts_.protection),
      retry_(protection_.retry, parts_.seed),
      flights_(requests_.size()),
      attempts_on_(parts_.worker_names.size(), 0) {}

RequestId Dispatcher::open(Request r) {
  assert(parts_.requests == nullptr);
  RequestId id;
  if (free_.empty()) {
    id = flights_.size();
    flights_.emplace_back();
    owned_.emplace_back();
  } else {
    id = free_.back();
    free_.pop_back();
    const std::uint32_t generation = flights_[id].generation + 1;
    flights_[id] = Flight{};
    flights_[id].generation = generation;
  }
  r.id = id;
  owned_[id] = std::move(r);
  return id;
}

void Dispatcher::arrive(RequestId id, const ClusterView& view) {
  const TimeUs now = view.now_us;
  if (router_down_) return end(id, Outcome::kRejected, reasons::kRouterUnavailable, now);
  // The split's schedule is read at the request's arrival time, not at a late carrier's clock: the
  // same request goes to the same version in every engine.
  Request scratch;
  const Request& arrived = requests_[id];
  const Request& r =
      parts_.versions ? parts_.versions->resolve(arrived, arrived.arrival_us, view.all(), scratch) : arrived;
  AdmissionDecision ad = admit_request(r, view, in_flight_, protection_, *parts_.shed, *parts_.admission);
  if (!ad.admitted) return end(id, Outcome::kRejected, ad.reason, now);
  RouteDecision rd = route_checked(*parts_.router, r, view);
  if (rd.rejected()) return end(id, Outcome::kRejected, rd.reason, now);
  Flight& f = flights_[id];
  f.admitted = true;
  ++in_flight_;
  retry_.on_request(now);
  if (protection_.request_timeout_us > 0) {
    const DispatchTimer timeout{DispatchTimer::kTimeout, id, arrived.arrival_us + protection_.request_timeout_us,
                                flights_[id].generation};
    timeouts_.emplace_back(timeout.at_us, id);
    carrier_.at(timeout);
  }
  if (parts_.elastic) parts_.elastic->on_routed(rd.worker, r);
  send(id, r, rd.worker, now);
}

// A retry: routed again, to the version of its first attempt.
void Dispatcher::route(RequestId id, const ClusterView& view) {
  Request scratch;
  const Request& r = parts_.versions ? parts_.versions->resolve(requests_[id], view.now_us, view.all(), scratch)
                                     : requests_[id];
  RouteDecision rd = route_checked(*parts_.router, r, view);
  if (rd.rejected()) return end(id, Outcome::kDropped, reasons::no_worker_to_retry_on(rd.reason), view.now_us);
  send(id, r, rd.worker, view.now_us);
}

void Dispatcher::send(RequestId id, const Request& r, int worker, TimeUs now) {
  Flight& f = flights_[id];
  ++f.attempts;
  f.ticket = next_ticket_++;
  f.worker = worker;
  f.on_worker = true;
  f.sent_us = now;
  ++attempts_on_[std::size_t(worker)];
  if (parts_.health) parts_.health->call_sent(worker, now);
  record_routed(id, worker);
  carrier_.send(r, worker, f.attempts);
}

void Dispatcher::off_worker(Flight& f) {
  f.on_worker = false;
  --attempts_on_[std::size_t(f.worker)];
}

bool Dispatcher::current_on(RequestId id, int worker, int attempt) const {
  const Flight& f = flights_[id];
  return f.on_worker && f.worker == worker && !f.ended && (attempt == 0 || f.attempts == attempt);
}

bool Dispatcher::answered(RequestId id, int worker, Outcome outcome, const std::string& reason, TimeUs at_us,
                          const Sequence* seq, TimeUs first_token_us) {
  if (!current_on(id, worker)) return false;
  Flight& f = flights_[id];
  off_worker(f);
  if (parts_.health) parts_.health->call_succeeded(worker, at_us - f.sent_us, at_us);
  end(id, outcome, reason, at_us, seq, first_token_us);
  return true;
}

void Dispatcher::attempt_failed(RequestId id, int worker, const std::string& failure, bool hard, TimeUs now) {
  if (!current_on(id, worker)) return;
  if (parts_.health) parts_.health->call_failed(worker, now, failure, hard);
  fail(id, failure, now);
}

void Dispatcher::worker_crashed(int worker, TimeUs now) {
  worker_failed(worker, reasons::worker_crashed(parts_.worker_names[std::size_t(worker)]), now);
}

void Dispatcher::worker_failed(int worker, const std::string& failure, TimeUs now) {
  if (parts_.health) parts_.health->call_failed(worker, now, failure, /*hard=*/true);
  if (attempts_on_[std::size_t(worker)] == 0) return;
  // The router's list, not the worker's, is complete: attempts on the way to it and answers on the
  // way back are lost with it.
  for (RequestId id = 0; id < flights_.size() && attempts_on_[std::size_t(worker)] > 0; ++id) {
    if (current_on(id, worker)) fail(id, failure, now);
  }
}

void Dispatcher::heartbeat_lost(int worker, TimeUs now) {
  if (attempts_on_[std::size_t(worker)] == 0) return;
  const std::string failure =
      reasons::worker_unreachable(parts_.worker_names[std::size_t(worker)], reasons::kHeartbeatLost);
  for (RequestId id = 0; id < flights_.size() && attempts_on_[std::size_t(worker)] > 0; ++id) {
    if (!current_on(id, worker)) continue;
    carrier_.cancel(id, worker);  // waits for the partition to heal, ahead of any retry sent there
    if (parts_.health) parts_.health->call_failed(worker, now, failure, /*hard=*/false);
    fail(id, failure, now);
  }
}

// The current attempt of `id` failed: retried after the policy's backoff, or dropped.
void Dispatcher::fail(RequestId id, const std::string& failure, TimeUs now) {
  Flight& f = flights_[id];
  off_worker(f);
  RetryDecision d = retry_.on_failure(requests_[id], f.attempts, failure, now);
  if (!d.retry) return end(id, Outcome::kDropped, d.reason, now);
  const DispatchTimer timer{DispatchTimer::kRetry, id, std::max(d.at_us, now), f.generation};
  retry_times_.push(timer.at_us);
  carrier_.at(timer);
}

void Dispatcher::fire(const DispatchTimer& timer, TimeUs now) {
  prune(now);  // a server never asks next_timer_us(): what fell due goes here
  const Flight& f = flights_[timer.id];
  if (f.ended || f.generation != timer.generation) return;
  if (timer.kind == DispatchTimer::kRetry) {
    if (f.on_worker) return;
    route(timer.id, carrier_.view());
    return;
  }
  // The client gave up at its deadline, however late the carrier noticed.
  cancel_on_worker(timer.id);
  end(timer.id, Outcome::kTimedOut, reasons::no_answer_within(protection_.request_timeout_us), timer.at_us);
}

void Dispatcher::cancel_on_worker(RequestId id) {
  Flight& f = flights_[id];
  if (!f.on_worker) return;
  off_worker(f);
  carrier_.cancel(id, f.worker);
}

void Dispatcher::abandon(RequestId id, std::uint32_t generation, const std::string& reason, TimeUs now) {
  const Flight& f = flights_[id];
  if (f.ended || f.generation != generation) return;
  cancel_on_worker(id);
  end(id, Outcome::kDropped, reason, now);
}

void Dispatcher::end_all(const char* reason, TimeUs now) {
  for (RequestId id = 0; id < flights_.size() && in_flight_ > 0; ++id) {
    const Flight& f = flights_[id];
    if (!f.admitted || f.ended) continue;
    cancel_on_worker(id);  // the worker sees its caller's connection close
    end(id, Outcome::kDropped, reason, now);
  }
}

void Dispatcher::router_down(TimeUs now) {
  router_down_ = true;
  end_all(reasons::kRouterRestarted, now);
}

void Dispatcher::router_up() { router_down_ = false; }

void Dispatcher::shut_down(TimeUs now) {
  router_down_ = true;
  end_all(reasons::kRouterShuttingDown, now);
}

void Dispatcher::renew(Router* router, Admission* shed, Admission* admission) {
  assert(in_flight_ == 0);
  parts_.router = router;
  parts_.shed = shed;
  parts_.admission = admission;
  retry_ = RetryPolicy(protection_.retry, parts_.seed);
  retry_times_ = {};
  timeouts_.clear();
}

void Dispatcher::prune(TimeUs now) {
  while (!retry_times_.empty() && retry_times_.top() < now) retry_times_.pop();
  while (!timeouts_.empty() && (timeouts_.front().first < now || flights_[timeouts_.front().second].ended)) {
    timeouts_.pop_front();
  }
}

TimeUs Dispatcher::next_timer_us(TimeUs now) {
  prune(now);
  TimeUs t = retry_times_.empty() ? kNever : retry_times_.top();
  if (!timeouts_.empty()) t = std::min(t, timeouts_.front().first);
  return t;
}

void Dispatcher::end(RequestId id, Outcome outcome, const std::string& reason, TimeUs at_us, const Sequence* seq,
                     TimeUs first_token_us) {
  Flight& f = flights_[id];
  assert(!f.ended);
  f.ended = true;
  if (f.admitted) --in_flight_;
  ++ended_count_;
  record_end(id, outcome, reason, at_us, seq, first_token_us);
  carrier_.ended(Ending{id, f.worker, f.attempts, outcome, reason, at_us});
  if (parts_.requests == nullptr) {  // online: the slot takes the next request
    if (parts_.versions) parts_.versions->forget(id);
    free_.push_back(id);
  }
}

void Dispatcher::record_end(RequestId id, Outcome outcome, const std::string& reason, TimeUs at_us,
                            const Sequence* seq, TimeUs first_token_us) {
  Recorder* rec = parts_.recorder;
  if (rec == nullptr) return;
  const auto lock = recorder_lock();
  if (outcome == Outcome::kRejected) {
    rec->reject(id, at_us, reason);
  } else if (seq != nullptr) {
    rec->finished(*seq, flights_[id].worker, outcome, reason, first_token_us, at_us);
  } else {
    rec->lost(id, outcome, reason, at_us);
  }
}

void Dispatcher::record_routed(RequestId id, int worker) {
  Recorder* rec = parts_.recorder;
  if (rec == nullptr) return;
  const auto lock = recorder_lock();
  rec->routed(id, worker);
}

std::unique_lock<std::mutex> Dispatcher::recorder_lock() const {
  return parts_.recorder_mu ? std::unique_lock<std::mutex>(*parts_.recorder_mu) : std::unique_lock<std::mutex>();
}

}  // namespace twinfer
