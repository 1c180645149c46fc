#include "runtime/rpc/replay_client.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "core/error.h"
#include "serving/lifecycle_reasons.h"
#include "policies/worker_state.h"
#include "runtime/rpc/twinfer.grpc.pb.h"
#include "runtime/rpc/wire.h"
#include "runtime/rpc/worker_links.h"

namespace twinfer::runtime {
namespace {

std::string code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    default: return "code " + std::to_string(int(code));
  }
}

TimeUs relative(TimeUs t, TimeUs zero) { return t < 0 ? -1 : t - zero; }

// One request on the wire; deletes itself when answered.
struct Call {
  grpc::ClientContext context;
  rpc::InferRequest request;
  rpc::InferResult reply;
};

class Collector {
 public:
  explicit Collector(std::size_t n) : results_(n), remaining_(n) {}

  void ended(RequestId id, const grpc::Status& s, const rpc::InferResult& reply, TimeUs zero) {
    ReplayedRequest r;
    r.id = id;
    if (s.ok()) {
      r.outcome = from_wire(reply.outcome());
      r.reason = reply.reason();
      r.worker = reply.worker();
      r.start_us = relative(reply.start_us(), zero);
      r.first_token_us = relative(reply.first_token_us(), zero);
      r.end_us = relative(reply.end_us(), zero);
      r.preemptions = reply.preemptions();
      r.cached_tokens = reply.cached_tokens();
      r.block_tokens = reply.kv_block_tokens();
      r.attempts = reply.attempts();
    } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
      // The router is down (restarting) or unreachable: the request was never accepted.
      r.outcome = Outcome::kRejected;
      r.reason = reasons::kRouterUnavailable;
      r.end_us = monotonic_now_us() - zero;
    } else if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      // The router's transport refused the message (protection.limits.max_request_bytes).
      r.outcome = Outcome::kRejected;
      r.reason = "request too large: " + s.error_message();
      r.end_us = monotonic_now_us() - zero;
    } else {
      r.outcome = Outcome::kDropped;
      r.reason = "rpc " + code_name(s.error_code()) + ": " + s.error_message();
      r.end_us = monotonic_now_us() - zero;
    }
    std::lock_guard<std::mutex> lock(mu_);
    results_[id] = std::move(r);
    if (--remaining_ == 0) cv_.notify_all();
  }

  std::vector<ReplayedRequest> wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return remaining_ == 0; });
    return std::move(results_);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<ReplayedRequest> results_;
  std::size_t remaining_;
};

void fetch_batches(rpc::Router::Stub& stub, TimeUs zero, int timeout_ms, const TransportSecurity& security,
                   ReplayRun& run) {
  grpc::ClientContext context;
  authorize(context, security);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  rpc::BatchQuery query;
  query.set_since_us(zero);
  rpc::BatchList list;
  grpc::Status s = stub.Batches(&context, query, &list);
  if (!s.ok()) {
    run.batch_errors.push_back("target: " + s.error_message());
    return;
  }
  for (const auto& e : list.errors()) run.batch_errors.push_back(e);
  for (const auto& m : list.batches()) {
    BatchRecord b = from_wire(m);
    b.start_us -= zero;
    b.end_us -= zero;
    run.batches.push_back(b);
  }
  std::stable_sort(run.batches.begin(), run.batches.end(),
                   [](const BatchRecord& a, const BatchRecord& b) { return a.start_us < b.start_us; });
}

}  // namespace

ReplayRun replay_trace(const Trace& input, const std::string& target, const ReplayOptions& options) {
  check_address(target, "--target");
  ReplayRun run;
  run.trace = options.rate_scale != 1.0 ? scale_trace(input, options.rate_scale) : input;
  run.target = target;
  grpc::ChannelArguments args = fast_reconnect_channel_args();  // a restarted router is found again soon
  args.SetMaxReceiveMessageSize(-1);  // Batches() lists may be large
  auto channel = grpc::CreateCustomChannel(target, channel_credentials(options.security), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                 std::chrono::milliseconds(options.connect_timeout_ms))) {
    throw Error("replay: cannot connect to " + target + " within " + std::to_string(options.connect_timeout_ms) +
                " ms");
  }
  auto stub = rpc::Router::NewStub(channel);
  const auto& requests = run.trace.requests;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (requests[i].id != i) throw Error("replay: trace ids must be 0..n-1 in order (" + run.trace.source + ")");
  }
  Collector collector(requests.size());
  // Trace time zero, on the clock that every process of this host shares.
  const auto zero_point = std::chrono::steady_clock::now();
  const TimeUs zero = std::chrono::duration_cast<std::chrono::microseconds>(zero_point.time_since_epoch()).count();
  for (const Request& r : requests) {
    std::this_thread::sleep_until(zero_point + std::chrono::microseconds(r.arrival_us));
    auto* call = new Call;
    Request sent = r;
    sent.arrival_us = zero + r.arrival_us;
    if (r.deadline_us != kNever) sent.deadline_us = zero + r.deadline_us;
    call->request = to_wire(sent);
    call->request.set_run_zero_us(zero);
    call->context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(options.request_timeout_ms));
    authorize(call->context, options.security);
    const RequestId id = r.id;
    stub->async()->Infer(&call->context, &call->request, &call->reply, [&collector, call, id, zero](grpc::Status s) {
      collector.ended(id, s, call->reply, zero);
      delete call;
    });
  }
  run.results = collector.wait();
  run.wall_s = s_from_us(monotonic_now_us() - zero);
  if (options.fetch_batches) fetch_batches(*stub, zero, 30000, options.security, run);
  return run;
}

nlohmann::json record_replay(const ReplayRun& run, std::vector<std::string> workers, const SloSpec& slo,
                             double rate_scale, const std::string& out_dir, bool timeline, bool steps) {
  int most = -1;
  bool unplaced = false;
  for (const auto& r : run.results) {
    most = std::max(most, r.worker);
    unplaced |= r.worker < 0 && r.outcome != Outcome::kRejected;
  }
  for (const auto& b : run.batches) most = std::max(most, b.worker);
  if (workers.empty()) {
    for (int w = 0; w <= most; ++w) workers.push_back("w" + std::to_string(w));
  } else if (most >= static_cast<int>(workers.size())) {
    throw Error("replay: the target reports worker " + std::to_string(most) + " but the config has " +
                std::to_string(workers.size()) + " instance(s)");
  }
  const int none = static_cast<int>(workers.size());
  if (unplaced) workers.push_back("(none)");

  Recorder recorder(run.trace.requests, workers, slo, timeline, steps);
  for (const auto& b : run.batches) recorder.batch(b);
  for (const auto& r : run.results) {
    if (r.outcome == Outcome::kRejected) {
      recorder.reject(r.id, r.end_us, r.reason);
      continue;
    }
    Sequence seq;
    seq.request = run.trace.requests[r.id];
    seq.started_us = r.start_us < 0 ? kNever : r.start_us;
    seq.first_token_us = r.first_token_us < 0 ? kNever : r.first_token_us;
    seq.preemptions = r.preemptions;
    seq.cached_tokens = r.cached_tokens;
    seq.block_tokens = r.block_tokens;
    for (int a = 0; a < r.attempts; ++a) recorder.routed(r.id, r.worker < 0 ? none : r.worker);
    recorder.finished(seq, r.worker < 0 ? none : r.worker, r.outcome, r.reason, r.first_token_us, r.end_us);
  }
  recorder.check_all_ended();
  nlohmann::json summary = recorder.summary();
  summary["run"] = {{"wall_s", run.wall_s}, {"target", run.target}, {"rate_scale", rate_scale}, {"mode", "replay"}};
  if (!run.batch_errors.empty()) summary["run"]["batch_errors"] = run.batch_errors;
  if (!out_dir.empty()) write_run_outputs(recorder, summary, out_dir, timeline);
  return summary;
}

}  // namespace twinfer::runtime
