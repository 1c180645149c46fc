// The router process's side of its workers: one gRPC channel each, their latest polled state, the
// requests forwarded and not yet answered, and their health. Feeds the ClusterView that the
// router's policies decide on.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "policies/cluster_view.h"
#include "runtime/rpc/twinfer.grpc.pb.h"

namespace twinfer::runtime {

struct LinkOptions {
  int poll_interval_ms = 5;     // State of every worker, this often
  int state_timeout_ms = 2000;  // a State call slower than this marks the worker down
  int connect_timeout_ms = 10000;  // start(): how long to wait for every worker's first answer
  bool log = true;              // report health changes on stderr
};

// What /metrics and Health report of one worker.
struct LinkStatus {
  int index = 0;
  std::string name;
  std::string address;
  bool up = true;
  int in_flight = 0;
  std::int64_t failures = 0;  // times it was marked down
  std::string last_error;
  WorkerView view;  // as the policies see it
};

// Thread safety: every method may be called from any thread.
class WorkerLinks {
 public:
  // `instances[i]` is the instance served at `addresses[i]`; both outlive this object.
  WorkerLinks(std::vector<std::string> addresses, std::vector<const InstanceSpec*> instances, LinkOptions options);
  ~WorkerLinks();  // stop()

  // Waits up to connect_timeout_ms for every worker's first State (those that do not answer are
  // marked down), then polls in the background.
  void start();
  void stop();

  std::size_t size() const { return links_.size(); }
  rpc::Worker::Stub& stub(int worker) { return *links_[worker]->stub; }

  // The views the policies decide on. Load combines the latest poll with the router's
  // own count of requests in flight, which moves at once.
  std::vector<WorkerView> views() const;

  // A request of predicted `work_us` was forwarded to `worker` on `call` (cancelled if the worker is
  // found down while the call is pending).
  void forwarded(int worker, TimeUs work_us, std::shared_ptr<grpc::ClientContext> call);
  void answered(int worker, const grpc::ClientContext* call);
  // A call to `worker` failed with `status`: marks it down and returns the reason to report for the
  // request, "worker W unreachable: <message>".
  std::string failed(int worker, const grpc::Status& status);

  std::vector<LinkStatus> status() const;

 private:
  struct Link {
    std::string address;
    const InstanceSpec* instance = nullptr;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<rpc::Worker::Stub> stub;
    // Guarded by WorkerLinks::mu_.
    rpc::WorkerState polled;
    bool up = true;
    TimeUs down_since_us = -1;
    std::int64_t failures = 0;
    std::string last_error;
    int in_flight = 0;
    std::unordered_map<const grpc::ClientContext*, std::shared_ptr<grpc::ClientContext>> calls;
    TimeUs work_sent_us = 0;          // all forwarded work, ever
    TimeUs work_sent_at_poll_us = 0;  // of it, what the latest poll's answer already counts
    bool polling = false;
  };

  void poll_loop();
  // REQUIRES: mu_ not held (gRPC may run the callback in the calling thread).
  void poll(int worker, TimeUs work_sent_us);
  void polled(int worker, const grpc::Status& status, const rpc::WorkerState& state, TimeUs issued_us,
              TimeUs work_sent_us);
  // Returns the calls in flight on it, for the caller to cancel once it released mu_ (cancelling
  // may run their callbacks in the calling thread). REQUIRES: mu_ held.
  std::vector<std::shared_ptr<grpc::ClientContext>> mark_down(int worker, const std::string& error);

  LinkOptions options_;
  std::vector<std::unique_ptr<Link>> links_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  int polls_pending_ = 0;  // guarded by mu_
  std::thread poller_;
};

}  // namespace twinfer::runtime
