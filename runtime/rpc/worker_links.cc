#include "runtime/rpc/worker_links.h"

#include <algorithm>
#include <cstdio>

#include "runtime/rpc/wire.h"

namespace twinfer::runtime {
namespace {

std::chrono::system_clock::time_point after_ms(int ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

// One State call in flight; deletes itself when answered.
struct StateCall {
  grpc::ClientContext context;
  rpc::Empty empty;
  rpc::WorkerState state;
};

}  // namespace

WorkerLinks::WorkerLinks(std::vector<std::string> addresses, std::vector<const InstanceSpec*> instances,
                         LinkOptions options)
    : options_(options) {
  for (std::size_t i = 0; i < addresses.size(); ++i) {
    auto link = std::make_unique<Link>();
    link->address = addresses[i];
    link->instance = instances[i];
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);  // Batches() lists may be large
    link->channel = grpc::CreateCustomChannel(addresses[i], grpc::InsecureChannelCredentials(), args);
    link->stub = rpc::Worker::NewStub(link->channel);
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
  const TimeUs issued = monotonic_now_us();
  for (std::size_t w = 0; w < links_.size(); ++w) {
    calls.push_back(std::make_unique<StateCall>());
    StateCall* c = calls.back().get();
    c->context.set_wait_for_ready(true);
    c->context.set_deadline(after_ms(options_.connect_timeout_ms));
    links_[w]->stub->async()->State(&c->context, &c->empty, &c->state, [&, w](grpc::Status s) {
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
  for (std::size_t w = 0; w < links_.size(); ++w) polled(int(w), results[w], calls[w]->state, issued, 0);
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = false;
  poller_ = std::thread([this] { poll_loop(); });
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
    lock.unlock();
    for (const auto& d : due) poll(d.first, d.second);
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(options_.poll_interval_ms), [this] { return stopping_; });
  }
}

void WorkerLinks::poll(int w, TimeUs work_sent_us) {
  auto* call = new StateCall;
  call->context.set_deadline(after_ms(options_.state_timeout_ms));
  const TimeUs issued = monotonic_now_us();
  links_[w]->stub->async()->State(&call->context, &call->empty, &call->state,
                                  [this, w, call, issued, work_sent_us](grpc::Status s) {
                                    polled(w, s, call->state, issued, work_sent_us);
                                    delete call;
                                    std::lock_guard<std::mutex> lock(mu_);
                                    links_[w]->polling = false;
                                    if (--polls_pending_ == 0) cv_.notify_all();
                                  });
}

void WorkerLinks::polled(int w, const grpc::Status& s, const rpc::WorkerState& state, TimeUs issued_us,
                         TimeUs work_sent_us) {
  std::unique_lock<std::mutex> lock(mu_);
  Link& link = *links_[w];
  if (!s.ok()) {
    // A worker that stopped answering may hold calls that would otherwise wait for their deadline.
    auto calls = mark_down(w, "worker " + std::to_string(w) + " unreachable: " + s.error_message());
    lock.unlock();
    for (auto& c : calls) c->TryCancel();
    return;
  }
  // An answer to a poll sent before the worker was found down says nothing of it now.
  if (!link.up && issued_us <= link.down_since_us) return;
  if (!link.up && options_.log) {
    std::fprintf(stderr, "twinfer serve: worker %d (%s) is up again\n", w, link.address.c_str());
  }
  link.up = true;
  link.polled = state;
  link.work_sent_at_poll_us = work_sent_us;
}

std::vector<std::shared_ptr<grpc::ClientContext>> WorkerLinks::mark_down(int w, const std::string& error) {
  Link& link = *links_[w];
  if (link.up) {
    link.up = false;
    link.down_since_us = monotonic_now_us();
    ++link.failures;
    link.last_error = error;
    if (options_.log) std::fprintf(stderr, "twinfer serve: %s (%s) marked down\n", error.c_str(), link.address.c_str());
  }
  std::vector<std::shared_ptr<grpc::ClientContext>> calls;
  for (const auto& c : link.calls) calls.push_back(c.second);
  return calls;
}

std::vector<WorkerView> WorkerLinks::views() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WorkerView> out(links_.size());
  for (std::size_t w = 0; w < links_.size(); ++w) {
    const Link& link = *links_[w];
    WorkerView& v = out[w];
    v.index = int(w);
    v.instance = link.instance;
    v.health = link.up ? Health::kUp : Health::kDown;
    fill_view(link.polled, v);
    // The poll is a few ms old; the router's own in-flight count is exact for its requests.
    const int polled_total = v.waiting + v.running;
    if (link.in_flight > polled_total) v.waiting += link.in_flight - polled_total;
    v.outstanding_work_us += link.work_sent_us - link.work_sent_at_poll_us;
  }
  return out;
}

void WorkerLinks::forwarded(int w, TimeUs work_us, std::shared_ptr<grpc::ClientContext> call) {
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = *links_[w];
  ++link.in_flight;
  link.work_sent_us += work_us;
  link.calls.emplace(call.get(), std::move(call));
}

void WorkerLinks::answered(int w, const grpc::ClientContext* call) {
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = *links_[w];
  --link.in_flight;
  link.calls.erase(call);
}

std::string WorkerLinks::failed(int w, const grpc::Status& s) {
  std::lock_guard<std::mutex> lock(mu_);
  Link& link = *links_[w];
  // Calls the router cancelled itself carry the error that made it cancel them.
  if (s.error_code() == grpc::StatusCode::CANCELLED && !link.up) return link.last_error;
  const std::string reason = "worker " + std::to_string(w) + " unreachable: " + s.error_message();
  mark_down(w, reason);  // the other calls in flight there fail by themselves
  return reason;
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
    s.up = link.up;
    s.in_flight = link.in_flight;
    s.failures = link.failures;
    s.last_error = link.last_error;
    s.view = v[w];
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace twinfer::runtime
