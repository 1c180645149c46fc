#include "runtime/rpc/router_server.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <unordered_map>

#include <grpcpp/grpcpp.h>

#include "policies/error.h"
#include "serving/lifecycle_reasons.h"
#include "policies/protection.h"
#include "policies/registry.h"
#include "policies/run_policies.h"
#include "runtime/rpc/http_server.h"
#include "runtime/rpc/router_metrics.h"
#include "runtime/rpc/timer_queue.h"
#include "runtime/rpc/twinfer.grpc.pb.h"
#include "runtime/rpc/wire.h"
#include "runtime/rpc/worker_links.h"

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

class RouterServer::Impl {
 public:
  struct Flight;

  // One Infer call; deletes itself when gRPC is done with it.
  class InferReactor final : public grpc::ServerUnaryReactor {
   public:
    explicit InferReactor(Impl* impl) : impl_(impl) {}
    void OnCancel() override {
      if (flight) impl_->end(*flight, Outcome::kDropped, "client cancelled the call");
    }
    void OnDone() override { delete this; }
    std::shared_ptr<Flight> flight;  // set before anything can end it

   private:
    Impl* impl_;
  };

  // A request admitted and not yet answered.
  struct Flight {
    std::uint64_t key = 0;
    Request request;  // arrival on the monotonic clock
    rpc::InferRequest wire;
    InferReactor* reactor = nullptr;
    rpc::InferResult* result = nullptr;
    // Guarded by Impl::flights_mu_.
    bool ended = false;
    int attempts = 0;
    std::shared_ptr<grpc::ClientContext> call;  // the pending forward, if any
    int worker = -1;                            // of the latest forward
  };

  // One forward of a flight to a worker; deletes itself when the worker answers or fails.
  struct Attempt {
    std::shared_ptr<Flight> flight;
    std::shared_ptr<grpc::ClientContext> context = std::make_shared<grpc::ClientContext>();
    rpc::InferRequest wire;
    rpc::InferResult reply;
    int worker = 0;
    TimeUs sent_us = 0;
  };

  // The gRPC face of one server generation (a restarted router registers a new one).
  class Service final : public rpc::Router::CallbackService {
   public:
    explicit Service(Impl* impl) : impl_(impl) {}
    grpc::ServerUnaryReactor* Infer(grpc::CallbackServerContext* c, const rpc::InferRequest* q,
                                    rpc::InferResult* r) override {
      return impl_->infer(c, q, r);
    }
    grpc::ServerUnaryReactor* Health(grpc::CallbackServerContext* c, const rpc::Empty*, rpc::HealthStatus* h) override {
      return impl_->health(c, h);
    }
    grpc::ServerUnaryReactor* Batches(grpc::CallbackServerContext* c, const rpc::BatchQuery* q,
                                      rpc::BatchList* l) override {
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
    links_.start();
    port_ = listen(options.listen);
    address_ = options.listen.substr(0, options.listen.rfind(':')) + ":" + std::to_string(port_);
    if (options.metrics_port >= 0) {
      metrics_ = std::make_unique<HttpServer>(host_of(options.listen), options.metrics_port,
                                              [this](const std::string& path) { return page(path); });
    }
  }

  ~Impl() { shutdown(); }

  void shutdown() {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (metrics_) metrics_->stop();
    stop_server(std::chrono::system_clock::now() +
                std::chrono::microseconds(static_cast<std::int64_t>(options_.drain_timeout_s * 1e6)));
    end_all("router shutting down");
    timers_.stop();
    wait_for_attempts();
    links_.stop();
  }

  void stop_for_restart() {
    std::lock_guard<std::mutex> lock(lifecycle_mu_);
    if (!server_) return;
    {
      std::lock_guard<std::mutex> route(route_mu_);
      accepting_ = false;
    }
    end_all(reasons::kRouterRestarted);
    // Every call is answered by now; the grace lets those answers leave before the server closes
    // (at the deadline gRPC cancels what is still pending, which clients would see as CANCELLED).
    stop_server(after_ms(kRestartGraceMs));
    outcomes_.router_restarted();
    std::lock_guard<std::mutex> route(route_mu_);
    make_policies();
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
    auto flight = std::make_shared<Flight>();
    flight->request = r;
    flight->wire = *request;
    flight->wire.set_arrival_us(r.arrival_us);
    flight->reactor = reactor;
    flight->result = result;
    RouteDecision decision;
    const std::string malformed = malformed_reason(*request);
    {
      // Policies may keep state (cycle positions, token buckets): one decision at a time.
      std::lock_guard<std::mutex> lock(route_mu_);
      if (!accepting_) {
        reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "router restarting"));
        return reactor;
      }
      std::vector<WorkerView> views = links_.views();
      ClusterView view{now, &views};
      std::lock_guard<std::mutex> flights(flights_mu_);
      AdmissionDecision admitted = malformed.empty()
                                       ? admit_request(r, view, static_cast<int>(flights_.size()), config_.protection,
                                                       *shed_, *admission_)
                                       : AdmissionDecision{false, "bad request: " + malformed};
      decision = admitted.admitted ? route_checked(*router_, r, view) : RouteDecision::reject(admitted.reason);
      if (!decision.rejected()) {
        retry_->on_request(now);
        flight->key = next_key_++;
        flights_.emplace(flight->key, flight);
        reactor->flight = flight;
      }
    }
    if (decision.rejected()) {
      *result = ended_without_worker(r.id, Outcome::kRejected, decision.reason, -1, now);
      outcomes_.ended(r, *result);
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    const TimeUs timeout_us = config_.protection.request_timeout_us;
    if (timeout_us > 0) {
      timers_.at(r.arrival_us + timeout_us, [this, flight, timeout_us] {
        end(*flight, Outcome::kTimedOut, reasons::no_answer_within(timeout_us));
      });
    }
    forward(flight, decision.worker);
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

  // Ends `flight` once: answers the client and cancels its pending forward. Later calls do nothing.
  void end(Flight& flight, Outcome outcome, const std::string& reason, const rpc::InferResult* reply = nullptr) {
    std::shared_ptr<grpc::ClientContext> pending;
    int worker;
    int attempts;
    {
      std::lock_guard<std::mutex> lock(flights_mu_);
      if (flight.ended) return;
      attempts = flight.attempts;
      flight.ended = true;
      flights_.erase(flight.key);
      pending = std::move(flight.call);
      worker = flight.worker;
    }
    // The worker drops a request whose call is cancelled (it stops using the device).
    if (pending) pending->TryCancel();
    if (reply) {
      *flight.result = *reply;
      flight.result->set_id(flight.request.id);
      flight.result->set_worker(worker);
    } else {
      *flight.result = ended_without_worker(flight.request.id, outcome, reason, worker, monotonic_now_us());
    }
    flight.result->set_attempts(attempts);
    outcomes_.ended(flight.request, *flight.result);
    flight.reactor->Finish(grpc::Status::OK);
  }

 private:
  static std::vector<std::string> check_workers(const std::vector<std::string>& workers) {
    for (const auto& w : workers) check_address(w, "--workers");
    return workers;
  }

  // REQUIRES: route_mu_ held, or no calls yet.
  void make_policies() {
    RunPolicies policies = make_run_policies(config_, options_.seed);
    cost_ = std::move(policies.cost);
    admission_ = std::move(policies.admission);
    router_ = std::move(policies.router);
    shed_ = std::move(policies.shed);
    retry_ = std::make_unique<RetryPolicy>(config_.protection.retry, options_.seed);
  }

  // Starts a server generation on `address`; returns its port.
  int listen(const std::string& address) {
    auto service = std::make_unique<Service>(this);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
    const std::int64_t max_bytes = config_.protection.limits.max_request_bytes;
    builder.SetMaxReceiveMessageSize(
        static_cast<int>(std::min<std::int64_t>(max_bytes, std::numeric_limits<int>::max())));
    builder.RegisterService(service.get());
    auto server = builder.BuildAndStart();
    if (!server || port == 0) throw Error("serve: cannot listen on " + address);
    std::lock_guard<std::mutex> lock(route_mu_);
    service_ = std::move(service);
    server_ = std::move(server);
    accepting_ = true;
    return port;
  }

  void stop_server(std::chrono::system_clock::time_point deadline) {
    if (!server_) return;
    server_->Shutdown(deadline);
    server_->Wait();
    std::lock_guard<std::mutex> lock(route_mu_);
    accepting_ = false;
    server_.reset();
    service_.reset();
  }

  void end_all(const std::string& reason) {
    std::vector<std::shared_ptr<Flight>> all;
    {
      std::lock_guard<std::mutex> lock(flights_mu_);
      for (auto& f : flights_) all.push_back(f.second);
    }
    for (auto& f : all) end(*f, Outcome::kDropped, reason);
  }

  void forward(const std::shared_ptr<Flight>& flight, int worker) {
    auto* attempt = new Attempt;
    attempt->flight = flight;
    attempt->wire = flight->wire;
    attempt->worker = worker;
    attempt->sent_us = monotonic_now_us();
    attempt->context->set_deadline(after_ms(options_.forward_timeout_ms));
    {
      std::lock_guard<std::mutex> lock(flights_mu_);
      if (flight->ended) {
        delete attempt;
        return;
      }
      ++flight->attempts;
      flight->call = attempt->context;
      flight->worker = worker;
      ++attempts_pending_;
    }
    const InstanceSpec& inst = config_.cluster.instances[worker];
    const Request& r = flight->request;
    links_.forwarded(worker, request_work_us(*cost_, inst, r.input_tokens, r.output_tokens), attempt->context);
    links_.stub(worker).async()->Submit(attempt->context.get(), &attempt->wire, &attempt->reply,
                                        [this, attempt](grpc::Status s) { attempt_done(attempt, s); });
  }

  void attempt_done(Attempt* attempt, const grpc::Status& status) {
    Flight& flight = *attempt->flight;
    const grpc::ClientContext* call = attempt->context.get();
    bool ended;
    int attempts;
    {
      std::lock_guard<std::mutex> lock(flights_mu_);
      ended = flight.ended;
      attempts = flight.attempts;
      if (flight.call.get() == call) flight.call.reset();
    }
    const TimeUs now = monotonic_now_us();
    if (ended) {
      links_.abandoned(attempt->worker, call);
    } else if (status.ok()) {
      links_.succeeded(attempt->worker, call, now - attempt->sent_us);
      end(flight, from_wire(attempt->reply.outcome()), "", &attempt->reply);
    } else {
      const std::string failure = links_.failed(attempt->worker, call, status);
      RetryDecision d;
      {
        std::lock_guard<std::mutex> lock(route_mu_);
        d = retry_->on_failure(flight.request, attempts, failure, now);
      }
      if (d.retry) {
        outcomes_.retried();
        timers_.at(d.at_us, [this, f = attempt->flight] { retry(f); });
      } else {
        end(flight, Outcome::kDropped, d.reason);
      }
    }
    delete attempt;
    std::lock_guard<std::mutex> lock(flights_mu_);
    if (--attempts_pending_ == 0) attempts_cv_.notify_all();
  }

  void retry(const std::shared_ptr<Flight>& flight) {
    RouteDecision decision;
    {
      std::lock_guard<std::mutex> lock(route_mu_);
      {
        std::lock_guard<std::mutex> flights(flights_mu_);
        if (flight->ended) return;
      }
      std::vector<WorkerView> views = links_.views();
      ClusterView view{monotonic_now_us(), &views};
      decision = route_checked(*router_, flight->request, view);
    }
    if (decision.rejected()) {
      end(*flight, Outcome::kDropped, reasons::no_worker_to_retry_on(decision.reason));
    } else {
      forward(flight, decision.worker);
    }
  }

  void wait_for_attempts() {
    std::unique_lock<std::mutex> lock(flights_mu_);
    attempts_cv_.wait(lock, [this] { return attempts_pending_ == 0; });
  }

  HttpResponse page(const std::string& path) {
    if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_text()};
    if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
    return {404, "text/plain; charset=utf-8", "not found; try /metrics or /healthz\n"};
  }

  RunConfig config_;  // owns the instances the links and views borrow
  RouterServerOptions options_;
  WorkerLinks links_;
  TimerQueue timers_;
  std::mutex route_mu_;  // before flights_mu_ when both are held
  std::unique_ptr<CostModel> cost_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<Admission> shed_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<RetryPolicy> retry_;
  bool accepting_ = false;  // guarded by route_mu_
  std::mutex flights_mu_;
  std::unordered_map<std::uint64_t, std::shared_ptr<Flight>> flights_;  // guarded by flights_mu_
  std::uint64_t next_key_ = 0;                                          // guarded by flights_mu_
  int attempts_pending_ = 0;                                            // guarded by flights_mu_
  std::condition_variable attempts_cv_;
  RouterMetrics outcomes_;
  std::atomic<TimeUs> first_request_us_{kNever};
  std::unique_ptr<Service> service_;        // guarded by route_mu_ (with server_)
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpServer> metrics_;
  int port_ = 0;
  std::string address_;
  std::mutex lifecycle_mu_;  // shutdown and restarts, one at a time
};

void require_router_server_support(const RunConfig& config) {
  const std::string where = config.source.empty() ? "config" : config.source;
  const char* others = " is not supported by twinfer serve (the gRPC router) yet; twinfer sim and twinfer run apply it";
  if (!config.traffic_split.is_null()) throw Error(where + ": traffic_split" + others);
  if (config.autoscaling.enabled()) throw Error(where + ": autoscaling" + others);
}

RouterServer::RouterServer(const RunConfig& config, const std::vector<std::string>& workers,
                           const RouterServerOptions& options) {
  require_router_server_support(config);
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
