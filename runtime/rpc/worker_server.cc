#include "runtime/rpc/worker_server.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <grpcpp/grpcpp.h>

#include "core/error.h"
#include "core/params.h"
#include "serving/run_policies.h"
#include "policies/servable.h"
#include "runtime/engine/worker_engine.h"
#include "runtime/engine/worker_parts.h"
#include "runtime/model/transformer_config.h"
#include "runtime/rpc/twinfer.grpc.pb.h"
#include "runtime/rpc/wire.h"

namespace twinfer::runtime {
namespace {

// The largest slowdown InjectFault takes, as a fault scenario's.
constexpr double kMaxSlowdown = 1e6;

// Batches kept for Batches(): the newest ones, about 100 MB at most.
constexpr std::size_t kMaxBatches = 2'000'000;

}  // namespace

class WorkerServer::Impl final : public rpc::Worker::CallbackService {
 public:
  Impl(const RunConfig& config, const WorkerServerOptions& options) : config_(config), options_(options) {
    const auto& instances = config_.cluster.instances;
    if (options.index < 0 || options.index >= static_cast<int>(instances.size())) {
      throw Error("--id " + std::to_string(options.index) + ": the config has " + std::to_string(instances.size()) +
                  " instance(s), numbered 0.." + std::to_string(int(instances.size()) - 1));
    }
    check_address(options.listen, "--listen");
    const InstanceSpec& inst = instances[options.index];
    RunPolicies policies = make_run_policies(config_, options.seed);
    cost_ = std::move(policies.cost);
    admission_ = std::move(policies.admission);
    WorkerParts parts = make_worker_parts(config_, inst, options.device, *admission_, *cost_, clock_, options.seed);
    kv_ = parts.batcher->kv_capacity();
    // The view of itself that too_large_reason() judges requests on: its model and KV capacity.
    self_view_.resize(1);
    self_view_[0].index = options.index;
    self_view_[0].instance = &inst;
    self_view_[0].kv_blocks_total = kv_.blocks_total;
    self_view_[0].kv_block_tokens = kv_.block_tokens;
    WorkerCallbacks callbacks;
    callbacks.on_end = [this](int, const Finished& f, TimeUs end_us) { answer(f, end_us); };
    callbacks.on_batch = [this](const BatchRecord& b) { keep(b); };
    callbacks.on_failed = [this](int, const std::string& failure) {
      // crash() joins the engine's thread: not from that thread.
      std::lock_guard<std::mutex> lock(pending_mu_);
      failure_ = failure;
      if (!stopping_) reclaimer_ = std::thread([this] { give_back(); });  // else stop() drops them
    };
    engine_ = std::make_unique<WorkerEngine>(std::move(parts), std::move(callbacks));

    grpc::ServerBuilder builder;
    builder.AddListeningPort(options.listen, server_credentials(options.security), &port_);
    builder.RegisterService(this);
    engine_->start();
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) {
      engine_->stop();
      throw Error("worker " + std::to_string(options.index) + ": cannot listen on " + options.listen);
    }
    address_ = options.listen.substr(0, options.listen.rfind(':')) + ":" + std::to_string(port_);
  }

  ~Impl() override { shutdown(); }

  void shutdown() {
    std::lock_guard<std::mutex> lock(shutdown_mu_);
    if (!server_) return;
    {
      std::lock_guard<std::mutex> lock(pending_mu_);
      stopping_ = true;
    }
    if (reclaimer_.joinable()) reclaimer_.join();
    // New calls are refused from here on; accepted ones are answered by the still-running engine.
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::microseconds(static_cast<std::int64_t>(options_.drain_timeout_s * 1e6)));
    engine_->stop();
    server_->Wait();
    server_.reset();
  }

  std::string failure() const {
    std::lock_guard<std::mutex> lock(pending_mu_);
    return given_back_ ? failure_ : std::string();
  }

  int port() const { return port_; }
  const std::string& address() const { return address_; }
  const std::string& name() const { return config_.cluster.instances[options_.index].name; }

  grpc::ServerUnaryReactor* Submit(grpc::CallbackServerContext* context, const rpc::InferRequest* request,
                                   rpc::InferResult* result) override {
    if (auto* refused = refuse_unauthenticated(context, options_.security.token)) return refused;
    std::string malformed = malformed_reason(*request);
    if (malformed.empty()) malformed = too_large_reason(*request);
    if (!malformed.empty()) {
      grpc::ServerUnaryReactor* reactor = new SubmitReactor(this, kNoId);
      *result = ended_without_worker(request->id(), Outcome::kRejected, "bad request: " + malformed, options_.index,
                                     clock_.now_us());
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    Request r = from_wire(*request);
    if (r.arrival_us == 0) r.arrival_us = clock_.now_us();
    // Clients (several routers) choose ids independently; the engine keys its sequences by id.
    r.id = next_id_++;
    auto* reactor = new SubmitReactor(this, r.id);
    std::unique_lock<std::mutex> lock(pending_mu_);
    if (!failure_.empty()) {
      // Failed: nothing more reaches the engine; the sender may place the request elsewhere.
      *result = returned(request->id());
      lock.unlock();
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    pending_[r.id] = Pending{reactor, result, request->id()};
    engine_->submit(r);  // before give_back() crashes the engine, which then returns it
    return reactor;
  }

  grpc::ServerUnaryReactor* InjectFault(grpc::CallbackServerContext* context, const rpc::FaultCommand* command,
                                        rpc::Empty*) override {
    if (auto* refused = refuse_unauthenticated(context, options_.security.token)) return refused;
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (!options_.allow_faults) {
      reactor->Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                   "fault injection is off: this worker was not started with --allow-faults"));
      return reactor;
    }
    const double slowdown = command->slowdown();
    if (slowdown != 0 && !(slowdown >= 1 && slowdown <= kMaxSlowdown)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "slowdown " + format_number(slowdown) + ": must be in [1, 1e6] (0: unchanged)"));
      return reactor;
    }
    if (slowdown != 0) engine_->set_slowdown(slowdown);
    if (command->device_error() != rpc::DEVICE_ERROR_UNCHANGED) {
      engine_->set_device_error(command->device_error() == rpc::DEVICE_ERROR_ON);
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* State(grpc::CallbackServerContext* context, const rpc::StateQuery* query,
                                  rpc::WorkerState* state) override {
    if (auto* refused = refuse_unauthenticated(context, options_.security.token)) return refused;
    *state = to_wire(engine_->view(), clock_.now_us());
    if (query->kv_events()) {
      KvEventCursor cursor{query->kv_events_log(), query->kv_events_next()};
      std::vector<KvEvent> events;
      engine_->read_kv_events(cursor, events);
      set_kv_events(events, cursor, *state);
    }
    // The router's servable check needs the block size to tell what can never fit.
    if (kv_.blocks_total > 0) state->set_kv_block_tokens(kv_.block_tokens);
    state->set_busy_us(busy_us_.load());  // what elastic pools' autoscalers measure utilization by
    state->set_failure(engine_->failure());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* Batches(grpc::CallbackServerContext* context, const rpc::BatchQuery* query,
                                    rpc::BatchList* list) override {
    if (auto* refused = refuse_unauthenticated(context, options_.security.token)) return refused;
    {
      std::lock_guard<std::mutex> lock(batches_mu_);
      for (const BatchRecord& b : batches_) {
        if (b.start_us >= query->since_us()) *list->add_batches() = to_wire(b);
      }
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  static constexpr RequestId kNoId = ~RequestId{0};

  // One Submit call; a cancelled call (the router gave up on the request) takes the request off
  // the engine. Deletes itself when gRPC is done with it.
  class SubmitReactor final : public grpc::ServerUnaryReactor {
   public:
    SubmitReactor(Impl* impl, RequestId id) : impl_(impl), id_(id) {}
    void OnCancel() override {
      if (id_ != kNoId) impl_->cancelled(id_);
    }
    void OnDone() override { delete this; }

   private:
    Impl* impl_;
    RequestId id_;
  };

  // A request that this worker's model or KV cache could never hold is refused before the engine
  // builds its prompt (a prompt of 2^31 tokens would not fit in memory either), with the reason a
  // router's admission gives (policies/servable.h) for this worker's model.
  std::string too_large_reason(const rpc::InferRequest& m) const {
    Request r;
    r.input_tokens = m.input_tokens();
    r.output_tokens = m.output_tokens();
    r.model = self_view_[0].model();
    return unservable_reason(r, ClusterView{0, &self_view_});
  }

  void cancelled(RequestId id) {
    Pending p;
    {
      std::lock_guard<std::mutex> lock(pending_mu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) return;  // already answered
      p = it->second;
      pending_.erase(it);
    }
    engine_->cancel(id);
    p.reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }

  struct Pending {
    grpc::ServerUnaryReactor* reactor = nullptr;
    rpc::InferResult* result = nullptr;
    RequestId client_id = 0;
  };

  // Called from the engine's thread when a request ends.
  void answer(const Finished& f, TimeUs end_us) {
    Pending p;
    {
      std::lock_guard<std::mutex> lock(pending_mu_);
      auto it = pending_.find(f.seq.request.id);
      if (it == pending_.end()) return;
      p = it->second;
      pending_.erase(it);
    }
    *p.result = result_of(f, options_.index, end_us);
    p.result->set_id(p.client_id);
    // The engine's failure is set before it drops the requests it was running when it failed.
    if (f.outcome == Outcome::kDropped) {
      const std::string failure = engine_->failure();
      if (!failure.empty() && f.reason == failure) p.result->set_worker_failure(failure);
    }
    p.reactor->Finish(grpc::Status::OK);
  }

  // REQUIRES: pending_mu_ held (it reads failure_).
  rpc::InferResult returned(RequestId client_id) {
    rpc::InferResult result;
    result.set_id(client_id);
    result.set_outcome(rpc::RETURNED);
    result.set_worker(options_.index);
    result.set_end_us(clock_.now_us());
    result.set_reason(failure_);
    result.set_worker_failure(failure_);
    return result;
  }

  // The engine failed: it gives back what it had not started, and each of those calls is answered
  // RETURNED, for the router to place elsewhere.
  void give_back() {
    const std::vector<Request> held = engine_->crash();
    std::vector<Pending> answers;
    {
      std::lock_guard<std::mutex> lock(pending_mu_);
      for (const Request& r : held) {
        auto it = pending_.find(r.id);
        if (it == pending_.end()) continue;
        Pending p = it->second;
        pending_.erase(it);
        *p.result = returned(p.client_id);
        answers.push_back(p);
      }
      given_back_ = true;
    }
    for (const Pending& p : answers) p.reactor->Finish(grpc::Status::OK);
  }

  void keep(const BatchRecord& b) {
    busy_us_ += b.end_us - b.start_us;
    std::lock_guard<std::mutex> lock(batches_mu_);
    if (batches_.size() == kMaxBatches) batches_.pop_front();
    batches_.push_back(b);
  }

  RunConfig config_;  // owns the instance the engine borrows
  WorkerServerOptions options_;
  MonotonicClock clock_;
  std::unique_ptr<CostModel> cost_;
  std::unique_ptr<Admission> admission_;
  std::unique_ptr<WorkerEngine> engine_;
  KvCapacity kv_;
  std::vector<WorkerView> self_view_;  // set once by the constructor, then only read (any thread)
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;
  std::atomic<RequestId> next_id_{0};
  std::atomic<TimeUs> busy_us_{0};
  mutable std::mutex pending_mu_;
  std::unordered_map<RequestId, Pending> pending_;
  std::string failure_;     // guarded by pending_mu_: the engine failed; nothing more reaches it
  bool given_back_ = false;  // guarded by pending_mu_: give_back() answered what the engine held
  bool stopping_ = false;    // guarded by pending_mu_: shutdown() began
  std::thread reclaimer_;    // runs give_back()
  std::mutex batches_mu_;
  std::deque<BatchRecord> batches_;
  std::mutex shutdown_mu_;
};

WorkerServer::WorkerServer(const RunConfig& config, const WorkerServerOptions& options)
    : impl_(std::make_unique<Impl>(config, options)) {}
WorkerServer::~WorkerServer() = default;
int WorkerServer::port() const { return impl_->port(); }
std::string WorkerServer::address() const { return impl_->address(); }
const std::string& WorkerServer::name() const { return impl_->name(); }
void WorkerServer::shutdown() { impl_->shutdown(); }
std::string WorkerServer::failure() const { return impl_->failure(); }

}  // namespace twinfer::runtime
