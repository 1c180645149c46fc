#include "runtime/rpc/router_server.h"

#include "policies/run_policies.h"

#include <cassert>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "policies/error.h"
#include "policies/registry.h"
#include "runtime/rpc/http_server.h"
#include "runtime/rpc/router_metrics.h"
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

LinkOptions link_options(const RouterServerOptions& o) {
  LinkOptions l;
  l.poll_interval_ms = o.poll_interval_ms;
  l.state_timeout_ms = o.state_timeout_ms;
  l.connect_timeout_ms = o.connect_timeout_ms;
  l.log = o.log;
  return l;
}

std::string host_of(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return host;
}

// One request forwarded to a worker; deletes itself when the worker answers or fails.
struct Forward {
  std::shared_ptr<grpc::ClientContext> context = std::make_shared<grpc::ClientContext>();
  rpc::InferRequest wire;
  rpc::InferResult reply;
  Request request;
  int worker = 0;
  grpc::ServerUnaryReactor* reactor = nullptr;
  rpc::InferResult* result = nullptr;
};

// A Batches() fan-out over every worker; the last answer finishes the call.
struct BatchGather {
  std::mutex mu;
  std::size_t pending = 0;
  rpc::BatchList* list = nullptr;
  grpc::ServerUnaryReactor* reactor = nullptr;
  struct One {
    grpc::ClientContext context;
    rpc::BatchList reply;
  };
  std::vector<std::unique_ptr<One>> calls;
};

}  // namespace

class RouterServer::Impl final : public rpc::Router::CallbackService {
 public:
  Impl(const RunConfig& config, const std::vector<std::string>& workers, const RouterServerOptions& options)
      : config_(config), options_(options), links_(check_workers(workers), instances_of(config_), link_options(options)) {
    check_address(options.listen, "--listen");
    RunPolicies policies = make_run_policies(config_, options.seed);
    cost_ = std::move(policies.cost);
    admission_ = std::move(policies.admission);
    router_ = std::move(policies.router);
    links_.start();

    grpc::ServerBuilder builder;
    builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) throw Error("serve: cannot listen on " + options.listen);
    address_ = options.listen.substr(0, options.listen.rfind(':')) + ":" + std::to_string(port_);
    if (options.metrics_port >= 0) {
      metrics_ = std::make_unique<HttpServer>(host_of(options.listen), options.metrics_port,
                                              [this](const std::string& path) { return page(path); });
    }
  }

  ~Impl() override { shutdown(); }

  void shutdown() {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (metrics_) metrics_->stop();
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() +
                        std::chrono::microseconds(static_cast<std::int64_t>(options_.drain_timeout_s * 1e6)));
      server_->Wait();
      server_.reset();
    }
    links_.stop();
  }

  int port() const { return port_; }
  const std::string& address() const { return address_; }
  int metrics_port() const { return metrics_ ? metrics_->port() : -1; }
  std::string metrics_text() const { return outcomes_.render(links_.status()); }

  grpc::ServerUnaryReactor* Infer(grpc::CallbackServerContext* context, const rpc::InferRequest* request,
                                  rpc::InferResult* result) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    const TimeUs now = monotonic_now_us();
    try {
      check_request(*request);
    } catch (const Error& e) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what()));
      return reactor;
    }
    Request r = from_wire(*request);
    if (r.arrival_us == 0) r.arrival_us = now;
    RouteDecision decision;
    {
      // Policies may keep state (cycle positions, token buckets): one decision at a time.
      std::lock_guard<std::mutex> lock(route_mu_);
      std::vector<WorkerView> views = links_.views();
      ClusterView view{now, &views};
      AdmissionDecision admitted = admission_->admit(r, view);
      decision = admitted.admitted ? route_checked(*router_, r, view) : RouteDecision::reject(admitted.reason);
    }
    if (decision.rejected()) {
      *result = ended_without_worker(r.id, Outcome::kRejected, decision.reason, -1, now);
      outcomes_.ended(r, *result);
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    assert(decision.worker < static_cast<int>(links_.size()));
    auto* call = new Forward;
    call->wire = *request;
    call->wire.set_arrival_us(r.arrival_us);
    call->request = r;
    call->worker = decision.worker;
    call->reactor = reactor;
    call->result = result;
    call->context->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options_.forward_timeout_ms));
    const InstanceSpec& inst = config_.cluster.instances[decision.worker];
    links_.forwarded(decision.worker, request_work_us(*cost_, inst, r.input_tokens, r.output_tokens), call->context);
    links_.stub(decision.worker)
        .async()
        ->Submit(call->context.get(), &call->wire, &call->reply, [this, call](grpc::Status s) { forwarded(call, s); });
    return reactor;
  }

  grpc::ServerUnaryReactor* Health(grpc::CallbackServerContext* context, const rpc::Empty*,
                                   rpc::HealthStatus* health) override {
    bool any_up = false;
    for (const LinkStatus& s : links_.status()) {
      rpc::WorkerHealth* w = health->add_workers();
      w->set_index(s.index);
      w->set_name(s.name);
      w->set_address(s.address);
      w->set_up(s.up);
      w->set_in_flight(s.in_flight);
      w->set_last_error(s.last_error);
      any_up |= s.up;
    }
    health->set_serving(any_up);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Batches(grpc::CallbackServerContext* context, const rpc::BatchQuery* query,
                                    rpc::BatchList* list) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    auto gather = std::make_shared<BatchGather>();
    gather->list = list;
    gather->reactor = reactor;
    gather->pending = links_.size();
    for (std::size_t w = 0; w < links_.size(); ++w) {
      gather->calls.push_back(std::make_unique<BatchGather::One>());
      gather->calls.back()->context.set_deadline(std::chrono::system_clock::now() +
                                                 std::chrono::milliseconds(options_.state_timeout_ms * 5));
    }
    for (std::size_t w = 0; w < links_.size(); ++w) {
      BatchGather::One* one = gather->calls[w].get();
      links_.stub(int(w)).async()->Batches(&one->context, query, &one->reply, [gather, one, w](grpc::Status s) {
        std::lock_guard<std::mutex> lock(gather->mu);
        if (s.ok()) {
          for (auto& b : *one->reply.mutable_batches()) *gather->list->add_batches() = std::move(b);
        } else {
          gather->list->add_errors("worker " + std::to_string(w) + ": " + s.error_message());
        }
        if (--gather->pending == 0) gather->reactor->Finish(grpc::Status::OK);
      });
    }
    if (links_.size() == 0) reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  static std::vector<std::string> check_workers(const std::vector<std::string>& workers) {
    for (const auto& w : workers) check_address(w, "--workers");
    return workers;
  }

  // The worker answered (or failed): answer the client.
  void forwarded(Forward* call, const grpc::Status& status) {
    links_.answered(call->worker, call->context.get());
    if (status.ok()) {
      *call->result = call->reply;
      call->result->set_id(call->request.id);
      call->result->set_worker(call->worker);
    } else {
      const std::string reason = links_.failed(call->worker, status);
      *call->result =
          ended_without_worker(call->request.id, Outcome::kDropped, reason, call->worker, monotonic_now_us());
    }
    outcomes_.ended(call->request, *call->result);
    call->reactor->Finish(grpc::Status::OK);
    delete call;
  }

  HttpResponse page(const std::string& path) {
    if (path == "/metrics") return {200, "text/plain; version=0.0.4; charset=utf-8", metrics_text()};
    if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
    return {404, "text/plain; charset=utf-8", "not found; try /metrics or /healthz\n"};
  }

  RunConfig config_;  // owns the instances the links and views borrow
  RouterServerOptions options_;
  WorkerLinks links_;
  std::unique_ptr<CostModel> cost_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<Router> router_;
  std::mutex route_mu_;
  RouterMetrics outcomes_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpServer> metrics_;
  int port_ = 0;
  std::string address_;
  std::mutex shutdown_mu_;
};

RouterServer::RouterServer(const RunConfig& config, const std::vector<std::string>& workers,
                           const RouterServerOptions& options) {
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
std::string RouterServer::metrics_text() const { return impl_->metrics_text(); }
void RouterServer::shutdown() { impl_->shutdown(); }

}  // namespace twinfer::runtime
