#include "runtime/rpc/router_server.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <limits>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "core/error.h"
#include "serving/protection.h"
#include "policies/registry.h"
#include "serving/run_policies.h"
#include "runtime/rpc/http_server.h"
#include "runtime/rpc/router_metrics.h"
#include "runtime/rpc/timer_queue.h"
#include "runtime/rpc/twinfer.grpc.pb.h"
#include "runtime/rpc/wire.h"
#include "runtime/rpc/worker_links.h"
#include "serving/dispatcher.h"
#include "serving/lifecycle_reasons.h"

namespace twinfer::runtime {
namespace {

std::vector<const InstanceSpec*> instances_of(const RunConfig& config) {
  std::vector<const InstanceSpec*> out;
  for (const auto& inst : config.cluster.instances) out.push_back(&inst);
  return out;
}

LinkOptions link_options(const RouterServerOptions& o, const RunConfig& config) {
  LinkOptions l;
  l.poll_interval_ms = o.poll_interval_ms;
  l.state_timeout_ms = o.state_timeout_ms;
  l.connect_timeout_ms = o.connect_timeout_ms;
  l.log = o.log;
  l.health = config.protection.health;
  l.security = o.security;
  return l;
}

std::string host_of(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host;
}

constexpr int kRestartGraceMs = 1000;

std::chrono::system_clock::time_point after_ms(std::int64_t ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

}  // namespace

// The gRPC carrier of the request lifecycle (serving/dispatcher.h). Every event (a call arrives, a
// forward ends, a timer falls due, a client cancels, the router restarts) is handled under mu_,
// which serializes the Dispatcher; the actions it asks for (forwards, cancels, answers) are
// collected there and carried out once mu_ is released, since gRPC may run a callback in the
// calling thread.
class RouterServer::Impl : private Carrier {
 public:
  // One Infer call; deletes itself when gRPC is done with it.
  class InferReactor final : public grpc::ServerUnaryReactor {
   public:
    explicit InferReactor(Impl* impl) : impl_(impl) {}
    void OnCancel() override { impl_->client_cancelled(this); }
    void OnDone() override { delete this; }
    // Guarded by Impl::mu_: the Dispatcher's slot of its request, once admitted to the lifecycle.
    bool opened = false;
    RequestId id = 0;
    std::uint32_t generation = 0;

   private:
    Impl* impl_;
  };

  // The client's side of one Dispatcher slot.
  struct Call {
    InferReactor* reactor = nullptr;
    rpc::InferResult* result = nullptr;
    Request request;  // the client's, with its own id; arrival on the monotonic clock
    rpc::InferRequest wire;
    std::shared_ptr<grpc::ClientContext> forward;  // the pending forward, if any
  };

  // One forward of a request to a worker; deleted once the worker answers or the call fails.
  struct Attempt {
    RequestId id = 0;
    std::uint32_t ticket = 0;
    int worker = 0;
    TimeUs sent_us = 0;
    std::shared_ptr<grpc::ClientContext> context = std::make_shared<grpc::ClientContext>();
    rpc::InferRequest wire;
    rpc::InferResult reply;
  };

  // What one event asks the outside world for.
  struct Actions {
    std::vector<std::shared_ptr<grpc::ClientContext>> cancels;
    std::vector<Attempt*> forwards;
    struct Answer {
      InferReactor* reactor = nullptr;
      rpc::InferResult* result = nullptr;
      rpc::InferResult value;
      Request request;
    };
    std::vector<Answer> answers;
  };

  // The gRPC face of one server generation (a restarted router registers a new one).
  class Service final : public rpc::Router::CallbackService {
   public:
    explicit Service(Impl* impl) : impl_(impl) {}
    grpc::ServerUnaryReactor* Infer(grpc::CallbackServerContext* c, const rpc::InferRequest* q,
                                    rpc::InferResult* r) override {
      if (auto* refused = refuse_unauthenticated(c, impl_->options_.security.token)) return refused;
      return impl_->infer(c, q, r);
    }
    grpc::ServerUnaryReactor* Health(grpc::CallbackServerContext* c, const rpc::Empty*, rpc::HealthStatus* h) override {
      if (auto* refused = refuse_unauthenticated(c, impl_->options_.security.token)) return refused;
      return impl_->health(c, h);
    }
    grpc::ServerUnaryReactor* Batches(grpc::CallbackServerContext* c, const rpc::BatchQuery* q,
                                      rpc::BatchList* l) override {
      if (auto* refused = refuse_unauthenticated(c, impl_->options_.security.token)) return refused;
      return impl_->batches(c, q, l);
    }

   private:
    Impl* impl_;
  };

  Impl(const RunConfig& config, const std::vector<std::string>& workers, const RouterServerOptions& options)
      : config_(config),
        options_(options),
        links_(check_workers(workers), instances_of(config_), link_options(options, config_)) {
    check_address(options.listen, "--listen");
    make_policies();
    std::vector<std::string> names;
    for (const auto& inst : config_.cluster.instances) names.push_back(inst.name);
    versions_ = std::make_unique<VersionChoice>(config_.cluster, config_.traffic_split, options_.seed);
    fleet_log_ = std::make_unique<Recorder>(no_requests_, names, config_.workload.slo, /*keep_batches=*/false);
    elastic_ = std::make_unique<ElasticCluster>(config_, *cost_, options_.seed, *fleet_log_, versions_.get());
    const std::size_t n = names.size();
    ready_since_us_.assign(n, -1);
    DispatcherParts d;
    d.protection = &config_.protection;
    d.router = router_.get();
    d.shed = shed_.get();
    d.admission = admission_.get();
    d.worker_names = names;
    d.seed = options_.seed;
    d.versions = versions_.get();
    d.elastic = elastic_.get();
    dispatcher_ = std::make_unique<Dispatcher>(std::move(d), static_cast<Carrier&>(*this));
    if (elastic_->autoscaling()) {
      // Only the initial replicas run from the start; the others wait for their pools.
      for (std::size_t w = 0; w < n; ++w) {
        if (elastic_->lifecycle(int(w)) == Lifecycle::kReady) {
          options_.processes->launch(int(w), "an initial replica of its pool");
        } else {
          links_.set_monitored(int(w), false);
        }
      }
    }
    links_.start();
    port_ = listen(options.listen);
    address_ = options.listen.substr(0, options.listen.rfind(':')) + ":" + std::to_string(port_);
    if (options.metrics_port >= 0) {
      HttpServerOptions http;
      http.tls_cert_file = options.security.cert_file;
      http.tls_key_file = options.security.key_file;
      http.token = options.security.token;
      metrics_ = std::make_unique<HttpServer>(host_of(options.listen), options.metrics_port,
                                              [this](const std::string& path) { return page(path); }, http);
    }
  }

  ~Impl() { shutdown(); }

  void shutdown() {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (metrics_) metrics_->stop();
    stop_server(std::chrono::system_clock::now() +
                std::chrono::microseconds(static_cast<std::int64_t>(options_.drain_timeout_s * 1e6)));
    handle([this] { dispatcher_->shut_down(run_now()); });
    timers_.stop();
    wait_for_attempts();
    links_.stop();
  }

  void stop_for_restart() {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (!server_) return;
    handle([this] {
      accepting_ = false;
      dispatcher_->router_down(run_now());
    });
    // Every call is answered by now; the grace lets those answers leave before the server closes
    // (at the deadline gRPC cancels what is still pending, which clients would see as CANCELLED).
    stop_server(after_ms(kRestartGraceMs));
    outcomes_.router_restarted();
    handle([this] {
      make_policies();
      dispatcher_->renew(router_.get(), shed_.get(), admission_.get());
      dispatcher_->router_up();
    });
    links_.reset_health();
  }

  void start_after_restart() {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (server_) return;
    const std::string again = address_;
    if (listen(again) != port_) throw Error("serve: cannot listen on " + again + " again after the restart");
  }

  int port() const { return port_; }
  TimeUs first_request_us() const { return first_request_us_.load(); }
  const std::string& address() const { return address_; }
  int metrics_port() const { return metrics_ ? metrics_->port() : -1; }
  std::string metrics_text() const { return outcomes_.render(links_.status()); }

  grpc::ServerUnaryReactor* infer(grpc::CallbackServerContext*, const rpc::InferRequest* request,
                                  rpc::InferResult* result) {
    auto* reactor = new InferReactor(this);
    const TimeUs now = monotonic_now_us();
    TimeUs never = kNever;
    first_request_us_.compare_exchange_strong(never, now);
    Request r = from_wire(*request);
    if (r.arrival_us == 0) r.arrival_us = now;
    const std::string malformed = malformed_reason(*request);
    if (!malformed.empty()) {
      *result = ended_without_worker(r.id, Outcome::kRejected, "bad request: " + malformed, -1, now);
      outcomes_.ended(r, *result);
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    bool unavailable = false;
    handle([&] {
      if (!accepting_) {
        unavailable = true;
        return;
      }
      if (zero_us_ == kNever) start_clock(request->run_zero_us() > 0 ? request->run_zero_us() : r.arrival_us);
      // The Dispatcher decides on the run's clock.
      Request on_run_clock = r;
      on_run_clock.arrival_us -= zero_us_;
      if (on_run_clock.deadline_us != kNever) on_run_clock.deadline_us -= zero_us_;
      const RequestId id = dispatcher_->open(on_run_clock);
      if (calls_.size() <= id) calls_.resize(id + 1);
      Call& call = calls_[id];
      call = Call{};
      call.reactor = reactor;
      call.result = result;
      call.request = r;
      call.wire = *request;
      call.wire.set_arrival_us(r.arrival_us);
      reactor->opened = true;
      reactor->id = id;
      reactor->generation = dispatcher_->generation(id);
      dispatcher_->arrive(id, view());
    });
    if (unavailable) reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "router restarting"));
    return reactor;
  }

  grpc::ServerUnaryReactor* health(grpc::CallbackServerContext* context, rpc::HealthStatus* health) {
    fill_health(links_.status(), *health);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* batches(grpc::CallbackServerContext* context, const rpc::BatchQuery* query,
                                    rpc::BatchList* list) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    links_.gather_batches(*query, list, options_.state_timeout_ms * 5, [reactor] { reactor->Finish(grpc::Status::OK); });
    return reactor;
  }

  void client_cancelled(InferReactor* reactor) {
    handle([&] {
      if (reactor->opened) dispatcher_->abandon(reactor->id, reactor->generation, reasons::kClientCancelled, run_now());
    });
  }

 private:
  static std::vector<std::string> check_workers(const std::vector<std::string>& workers) {
    for (const auto& w : workers) check_address(w, "--workers");
    return workers;
  }

  // Runs `event` under mu_, then carries out the actions it asked for.
  template <class Event>
  void handle(Event&& event) {
    Actions actions;
    {
      std::lock_guard<std::mutex> lock(mu_);
      actions_ = &actions;
      event();
      if (elastic_->autoscaling()) stop_drained();
      actions_ = nullptr;
    }
    for (auto& c : actions.cancels) c->TryCancel();  // the worker drops a request whose call is cancelled
    for (Attempt* a : actions.forwards) {
      links_.stub(a->worker).async()->Submit(a->context.get(), &a->wire, &a->reply,
                                             [this, a](grpc::Status s) { attempt_done(a, s); });
    }
    for (auto& answer : actions.answers) {
      *answer.result = std::move(answer.value);
      outcomes_.ended(answer.request, *answer.result);
      answer.reactor->Finish(grpc::Status::OK);
    }
  }

  // The run's clock: zero at the first request. REQUIRES: mu_ held.
  TimeUs run_now() const { return zero_us_ == kNever ? 0 : monotonic_now_us() - zero_us_; }

  // The first request set the run's time zero (monotonic): pools decide from now on. REQUIRES: mu_.
  void start_clock(TimeUs zero_us) {
    zero_us_ = zero_us;
    if (elastic_->autoscaling()) schedule_decision(elastic_->interval_us());
  }

  // Carrier; called by the Dispatcher, under mu_.
  ClusterView view() override {
    const TimeUs now = run_now();
    views_ = links_.views();
    for (std::size_t w = 0; w < views_.size(); ++w) {
      views_[w].lifecycle = elastic_->lifecycle(int(w));
      views_[w].ready_since_us = ready_since_us_[w];
    }
    ClusterView view{now, &views_};
    if (router_->reads_kv_events()) view.kv_events = &kv_events_;
    return view;
  }

  void send(const Request& r, int worker, int attempt) override {
    Call& call = calls_[r.id];
    auto* a = new Attempt;
    a->id = r.id;
    a->ticket = dispatcher_->ticket(r.id);
    a->worker = worker;
    a->sent_us = monotonic_now_us();
    a->wire = call.wire;
    a->context->set_deadline(after_ms(options_.forward_timeout_ms));
    links_.authorize(*a->context);
    call.forward = a->context;
    ++attempts_pending_;
    if (attempt > 1) outcomes_.retried();
    const InstanceSpec& inst = config_.cluster.instances[std::size_t(worker)];
    links_.forwarded(worker, request_work_us(*cost_, inst, r.input_tokens, r.output_tokens), a->context);
    actions_->forwards.push_back(a);
  }

  void cancel(RequestId id, int) override {
    Call& call = calls_[id];
    if (call.forward) actions_->cancels.push_back(std::move(call.forward));
    call.forward.reset();
  }

  void at(const DispatchTimer& timer) override {
    timers_.at(zero_us_ + timer.at_us, [this, timer] { handle([&] { dispatcher_->fire(timer, run_now()); }); });
  }

  // Elastic pools, under mu_. A decision is dated at its due time on the run's clock (a late timer
  // thread does not skew the autoscalers' windows), never before a change already dated later.
  void schedule_decision(TimeUs due_us) {
    timers_.at(zero_us_ + due_us, [this, due_us] { handle([&] { decide(due_us); }); });
  }

  void decide(TimeUs due_us) {
    const TimeUs dated_us = std::max(due_us, elastic_dated_us_);
    ClusterView v = view();
    v.now_us = dated_us;
    for (const LifecycleChange& c : elastic_->decide(v, links_.busy_us())) {
      const int w = c.worker;
      if (c.to == Lifecycle::kStarting) {
        links_.set_monitored(w, false);  // answers from here on are the new process's
        options_.processes->launch(w, "its pool scaled up");
        check_started(w, elastic_->start_epoch(w), dated_us + elastic_->cold_start_us(w));
      } else if (c.to == Lifecycle::kStopped) {  // a start cancelled: its process ends
        options_.processes->retire(w);
      }
    }
    // A timer thread late by more than an interval decides once, not once per missed interval.
    TimeUs next = due_us + elastic_->interval_us();
    if (next <= run_now()) next = run_now() + elastic_->interval_us();
    schedule_decision(next);
  }

  // A started worker is ready once its process answers and the modeled cold start has passed: the
  // runtime never pretends to be faster than the real start, nor slower than the model.
  void check_started(int w, int epoch, TimeUs at_us) {
    timers_.at(zero_us_ + at_us, [this, w, epoch] {
      handle([&] {
        if (elastic_->lifecycle(w) != Lifecycle::kStarting || elastic_->start_epoch(w) != epoch) return;
        const TimeUs now = run_now();
        if (links_.answered_us(w) == kNever) {
          check_started(w, epoch, now + TimeUs(options_.poll_interval_ms) * 1000);
          return;
        }
        if (!elastic_->ready(w, epoch, now)) return;
        elastic_dated_us_ = std::max(elastic_dated_us_, now);
        ready_since_us_[std::size_t(w)] = now;
        links_.set_monitored(w, true);
      });
    });
  }

  // A draining worker with no request in flight to it stops: its process ends.
  void stop_drained() {
    for (std::size_t w = 0; w < ready_since_us_.size(); ++w) {
      if (elastic_->lifecycle(int(w)) != Lifecycle::kDraining || dispatcher_->attempts_on(int(w)) > 0) continue;
      const TimeUs now = run_now();
      elastic_->stopped(int(w), now);
      elastic_dated_us_ = std::max(elastic_dated_us_, now);
      links_.set_monitored(int(w), false);
      options_.processes->retire(int(w));
    }
  }

  void ended(const Ending& e) override {
    Call& call = calls_[e.id];
    Actions::Answer answer;
    answer.reactor = call.reactor;
    answer.result = call.result;
    answer.request = call.request;
    if (reply_ != nullptr) {
      answer.value = *reply_;
      answer.value.set_id(call.request.id);
      answer.value.set_worker(e.worker);
    } else {
      answer.value = ended_without_worker(call.request.id, e.outcome, std::string(e.reason), e.worker, monotonic_now_us());
    }
    answer.value.set_attempts(e.attempts);
    actions_->answers.push_back(std::move(answer));
    if (call.forward) actions_->cancels.push_back(std::move(call.forward));
    call = Call{};
  }

  // REQUIRES: mu_ held, or no calls yet. The cost model holds nothing a restart forgets; the pools
  // size their cold starts by it, so it is made once.
  void make_policies() {
    RunPolicies policies = make_run_policies(config_, options_.seed);
    if (!cost_) cost_ = std::move(policies.cost);
    admission_ = std::move(policies.admission);
    router_ = std::move(policies.router);
    shed_ = std::move(policies.shed);
    // A new router knows nothing of the workers' caches: its first polls bring them whole.
    links_.follow_kv_events(router_->reads_kv_events());
  }

  // Starts a server generation on `address`; returns its port.
  int listen(const std::string& address) {
    auto service = std::make_unique<Service>(this);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(address, server_credentials(options_.security), &port);
    const std::int64_t max_bytes = config_.protection.limits.max_request_bytes;
    builder.SetMaxReceiveMessageSize(
        static_cast<int>(std::min<std::int64_t>(max_bytes, std::numeric_limits<int>::max())));
    // Calls past this many at once on one connection wait in their client (HTTP/2 flow control):
    // a burst costs the router memory and time for what it can admit, not for every call sent.
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options_.max_calls_per_connection);
    builder.RegisterService(service.get());
    auto server = builder.BuildAndStart();
    if (!server || port == 0) throw Error("serve: cannot listen on " + address);
    std::lock_guard<std::mutex> lock(mu_);
    service_ = std::move(service);
    server_ = std::move(server);
    accepting_ = true;
    return port;
  }

  void stop_server(std::chrono::system_clock::time_point deadline) {
    if (!server_) return;
    server_->Shutdown(deadline);
    server_->Wait();
    std::lock_guard<std::mutex> lock(mu_);
    accepting_ = false;
    server_.reset();
    service_.reset();
  }

  void attempt_done(Attempt* a, const grpc::Status& status) {
    const grpc::ClientContext* context = a->context.get();
    handle([&] {
      const TimeUs now = run_now();
      if (!dispatcher_->current(a->id, a->ticket)) {
        links_.abandoned(a->worker, context);  // an attempt the router gave up on
      } else if (status.ok() && a->reply.outcome() == rpc::RETURNED) {
        // The worker failed before starting it: placed elsewhere, as after a refused connection.
        calls_[a->id].forward.reset();
        links_.worker_failed(a->worker, context, a->reply.worker_failure());
        dispatcher_->attempt_failed(a->id, a->worker, a->reply.worker_failure(), /*hard=*/true, now);
      } else if (status.ok()) {
        calls_[a->id].forward.reset();
        if (a->reply.worker_failure().empty()) {
          links_.succeeded(a->worker, context, monotonic_now_us() - a->sent_us);
        } else {
          links_.worker_failed(a->worker, context, a->reply.worker_failure());  // it ends with the worker's drop
        }
        reply_ = &a->reply;
        dispatcher_->answered(a->id, a->worker, from_wire(a->reply.outcome()), a->reply.reason(), now, nullptr, -1);
        reply_ = nullptr;
      } else {
        calls_[a->id].forward.reset();
        // The links feed the worker's health and word the failure.
        const std::string failure = links_.failed(a->worker, context, status);
        dispatcher_->attempt_failed(a->id, a->worker, failure, status.error_code() == grpc::StatusCode::UNAVAILABLE,
                                    now);
      }
      if (--attempts_pending_ == 0) attempts_cv_.notify_all();
    });
    delete a;
  }

  void wait_for_attempts() {
    std::unique_lock<std::mutex> lock(mu_);
    attempts_cv_.wait(lock, [this] { return attempts_pending_ == 0; });
  }

  HttpResponse page(const std::string& path) {
    if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_text()};
    if (path == "/healthz") {
      // As Health's `serving`: some worker is not down.
      rpc::HealthStatus health;
      fill_health(links_.status(), health);
      if (health.serving()) return {200, "text/plain; charset=utf-8", "ok\n"};
      return {503, "text/plain; charset=utf-8", "no worker is up\n"};
    }
    return {404, "text/plain; charset=utf-8", "not found; try /metrics or /healthz\n"};
  }

  RunConfig config_;  // owns the instances the links and views borrow
  RouterServerOptions options_;
  WorkerLinks links_;
  TimerQueue timers_;
  std::mutex mu_;  // the Dispatcher and everything below it
  std::unique_ptr<CostModel> cost_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<Admission> shed_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<VersionChoice> versions_;
  const std::vector<Request> no_requests_;
  std::unique_ptr<Recorder> fleet_log_;    // the pools' markers and counters
  std::unique_ptr<ElasticCluster> elastic_;
  std::unique_ptr<Dispatcher> dispatcher_;
  TimeUs zero_us_ = kNever;                // the run clock's zero on the monotonic clock
  TimeUs elastic_dated_us_ = 0;            // the latest time a lifecycle change was dated
  std::vector<TimeUs> ready_since_us_;     // per worker: when a cold start made it ready; -1: from the start
  std::vector<Call> calls_;              // by Dispatcher slot
  std::vector<WorkerView> views_;        // the latest view handed to the Dispatcher
  // The workers' KV events, as the links' State polls bring them (for a router that reads them).
  struct KvEvents : KvEventSource {
    explicit KvEvents(WorkerLinks& l) : links(l) {}
    void take(int worker, std::vector<KvEvent>& out) override { links.take_kv_events(worker, out); }
    WorkerLinks& links;
  };
  KvEvents kv_events_{links_};
  Actions* actions_ = nullptr;           // of the event being handled
  const rpc::InferResult* reply_ = nullptr;  // the worker's answer being handled
  bool accepting_ = false;
  int attempts_pending_ = 0;
  std::condition_variable attempts_cv_;
  RouterMetrics outcomes_;
  std::atomic<TimeUs> first_request_us_{kNever};
  std::unique_ptr<Service> service_;  // guarded by mu_ (with server_)
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpServer> metrics_;
  int port_ = 0;
  std::string address_;
  std::mutex lifecycle_mu_;  // shutdown and restarts, one at a time
};

void require_router_server_support(const RunConfig& config, bool can_start_workers) {
  const std::string where = config.source.empty() ? "config" : config.source;
  if (config.autoscaling.enabled() && !can_start_workers) {
    throw Error(where +
                ": autoscaling needs a router that starts and stops its workers: twinfer serve --spawn-workers "
                "(with --workers they run elsewhere)");
  }
}

RouterServer::RouterServer(const RunConfig& config, const std::vector<std::string>& workers,
                           const RouterServerOptions& options) {
  require_router_server_support(config, options.processes != nullptr);
  if (workers.size() != config.cluster.instances.size()) {
    throw Error("--workers: " + std::to_string(workers.size()) + " address(es) for the config's " +
                std::to_string(config.cluster.instances.size()) + " instance(s); give one per instance, in order");
  }
  impl_ = std::make_unique<Impl>(config, workers, options);
}
RouterServer::~RouterServer() = default;
int RouterServer::port() const { return impl_->port(); }
std::string RouterServer::address() const { return impl_->address(); }
int RouterServer::metrics_port() const { return impl_->metrics_port(); }
TimeUs RouterServer::first_request_us() const { return impl_->first_request_us(); }
std::string RouterServer::metrics_text() const { return impl_->metrics_text(); }
void RouterServer::stop_for_restart() { impl_->stop_for_restart(); }
void RouterServer::start_after_restart() { impl_->start_after_restart(); }
void RouterServer::shutdown() { impl_->shutdown(); }

}  // namespace twinfer::runtime
