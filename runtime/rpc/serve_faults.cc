#include "runtime/rpc/serve_faults.h"

#include <chrono>
#include <cstdio>

#include <grpcpp/grpcpp.h>

#include "core/error.h"
#include "runtime/rpc/twinfer.grpc.pb.h"
#include "runtime/rpc/wire.h"

namespace twinfer::runtime {
namespace {

std::string seconds(TimeUs us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", us * 1e-6);
  return buf;
}

// The worker's InjectFault rpc, straight to its own address (not through a faulty link).
std::string inject(const std::string& address, const rpc::FaultCommand& command, const TransportSecurity& security) {
  auto channel = grpc::CreateChannel(address, channel_credentials(security));
  auto stub = rpc::Worker::NewStub(channel);
  grpc::ClientContext context;
  authorize(context, security);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  rpc::Empty empty;
  grpc::Status s = stub->InjectFault(&context, command, &empty);
  return s.ok() ? "" : s.error_message();
}

}  // namespace

std::vector<bool> workers_needing_proxies(const FaultScenario& scenario, std::size_t workers) {
  std::vector<bool> out(workers, false);
  for (const Fault& f : scenario.faults) {
    if ((f.type == FaultType::kLink || f.type == FaultType::kPartition) && f.worker >= 0 &&
        std::size_t(f.worker) < workers) {
      out[std::size_t(f.worker)] = true;
    }
  }
  return out;
}

void check_fault_targets(const FaultScenario& scenario, const FaultTargets& t) {
  for (const Fault& f : scenario.faults) {
    if ((f.type == FaultType::kCrash || f.type == FaultType::kDeviceError) && !t.supervisor) {
      throw Error(f.where + ": " + fault_type_name(f.type) +
                  " faults need --spawn-workers (serve must own the worker processes)");
    }
    if ((f.type == FaultType::kLink || f.type == FaultType::kPartition) &&
        (std::size_t(f.worker) >= t.proxies.size() || !t.proxies[std::size_t(f.worker)])) {
      throw Error(f.where + ": worker " + std::to_string(f.worker) + " has no fault proxy");
    }
    if (f.worker >= 0 && std::size_t(f.worker) >= t.workers.size()) {
      throw Error(f.where + ": worker " + std::to_string(f.worker) + " is not served");
    }
  }
}

FaultInjector::FaultInjector(FaultScenario scenario, FaultTargets targets, bool log)
    : scenario_(std::move(scenario)), targets_(std::move(targets)), log_(log) {
  check_fault_targets(scenario_, targets_);
}

FaultInjector::~FaultInjector() { stop(); }

void FaultInjector::start(std::function<TimeUs()> zero_us) {
  thread_ = std::thread([this, zero_us] { loop(zero_us); });
}

void FaultInjector::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> FaultInjector::applied() const {
  std::lock_guard<std::mutex> lock(mu_);
  return applied_;
}

void FaultInjector::loop(std::function<TimeUs()> zero_us) {
  std::unique_lock<std::mutex> lock(mu_);
  TimeUs zero = kNever;
  while (!stopping_ && (zero = zero_us()) == kNever) cv_.wait_for(lock, std::chrono::milliseconds(10));
  for (const FaultEvent& e : scenario_.events()) {
    cv_.wait_for(lock, std::chrono::microseconds(std::max<TimeUs>(0, zero + e.at_us - monotonic_now_us())),
                 [this] { return stopping_; });
    if (stopping_) return;
    // Applying takes locks of the router and supervisor, and may wait for an rpc.
    lock.unlock();
    apply(e);
    lock.lock();
    applied_.push_back(seconds(monotonic_now_us() - zero) + ": " + fault_type_name(e.fault->type) +
                       (e.fault->worker >= 0 ? " worker " + std::to_string(e.fault->worker) : std::string()) +
                       (e.starts ? " starts" : " ends"));
    if (log_) std::fprintf(stderr, "twinfer serve: fault at %s\n", applied_.back().c_str());
  }
}

void FaultInjector::apply(const FaultEvent& e) {
  const Fault& f = *e.fault;
  switch (f.type) {
    case FaultType::kCrash:
      if (e.starts) {
        targets_.supervisor->crash(f.worker);
      } else {
        targets_.supervisor->recover(f.worker);
      }
      break;
    case FaultType::kSlowdown: {
      rpc::FaultCommand command;
      command.set_slowdown(e.starts ? f.factor : 1.0);
      const std::string error = inject(targets_.workers[std::size_t(f.worker)], command, targets_.security);
      if (!error.empty() && log_) {
        std::fprintf(stderr, "twinfer serve: %s: cannot set the slowdown of worker %d: %s\n", f.where.c_str(),
                     f.worker, error.c_str());
      }
      break;
    }
    case FaultType::kDeviceError: {
      // A worker that fails exits; held, it is not restarted before the fault ends.
      if (e.starts) targets_.supervisor->hold(f.worker);
      rpc::FaultCommand command;
      command.set_device_error(e.starts ? rpc::DEVICE_ERROR_ON : rpc::DEVICE_ERROR_OFF);
      const std::string error = inject(targets_.workers[std::size_t(f.worker)], command, targets_.security);
      if (!error.empty() && e.starts && log_) {
        std::fprintf(stderr, "twinfer serve: %s: cannot fail the device of worker %d: %s\n", f.where.c_str(),
                     f.worker, error.c_str());
      }
      if (!e.starts) targets_.supervisor->recover(f.worker);  // started again if it failed meanwhile
      break;
    }
    case FaultType::kLink:
      targets_.proxies[std::size_t(f.worker)]->set_link(e.starts ? f.latency_us : 0, e.starts ? f.loss : 0);
      break;
    case FaultType::kPartition:
      targets_.proxies[std::size_t(f.worker)]->set_partitioned(e.starts);
      break;
    case FaultType::kRouterRestart:
      try {
        if (e.starts) {
          targets_.router->stop_for_restart();
        } else {
          targets_.router->start_after_restart();
        }
      } catch (const Error& error) {
        std::fprintf(stderr, "twinfer serve: %s: %s\n", f.where.c_str(), error.what());
      }
      break;
  }
}

}  // namespace twinfer::runtime
