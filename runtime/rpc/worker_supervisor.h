// `twinfer serve --spawn-workers`: the router process starts one `twinfer worker` child per
// instance, each on a loopback port chosen up front (so that a restarted worker comes back on the
// same address), restarts a child that exits unexpectedly after a delay, and stops them all at the
// end. A crash fault kills a child on purpose and holds it down until its recovery. Elastic pools
// start a worker's process when it scales up (launch) and stop it once it drained (retire).
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/time.h"
#include "runtime/rpc/router_server.h"

namespace twinfer::runtime {

// This process's executable (/proc/self/exe).
std::string self_executable();

// `count` TCP ports on 127.0.0.1 that are free now (a short window remains before they are bound).
std::vector<int> free_loopback_ports(int count);

struct SupervisorOptions {
  std::string binary;                      // the twinfer executable
  std::vector<std::vector<std::string>> args;  // per worker: the arguments after the binary
  double restart_after_s = 1;              // delay before restarting a child that exited unexpectedly
  double stop_timeout_s = 30;              // stop(): SIGTERM, then SIGKILL after this long
  bool log = true;                         // report exits and restarts on stderr
  std::vector<bool> start_retired;         // per worker: not started until launch(); empty: none
};

// Children inherit this process's stdout and stderr, and die with the thread that supervises
// them (PR_SET_PDEATHSIG), so that no worker outlives its router.
// Thread safety: every method may be called from any thread.
class WorkerSupervisor : public WorkerProcesses {
 public:
  explicit WorkerSupervisor(SupervisorOptions options);
  ~WorkerSupervisor();  // stop()

  // Starts every child; returns once they are spawned (not yet listening). Throws twinfer::Error
  // when a child cannot be started.
  void start();
  // SIGTERM to every child, SIGKILL to those alive after stop_timeout_s; reaps them. Idempotent.
  void stop();

  // A crash: SIGKILL to worker w's process, which is not restarted until recover(w). Nothing when
  // w is retired.
  void crash(int w);
  // The end of a crash: worker w starts again now (unless it was retired meanwhile, or it still runs).
  void recover(int w);
  // Worker w runs on, but once it exits it is not restarted until recover(w) (a device error
  // fault: a failed worker stays down until the fault ends).
  void hold(int w);
  // Elastic pools: worker w's process starts now (a cold start); retire(w): it is stopped (SIGTERM)
  // and not restarted until launched again.
  void launch(int w, const std::string& why) override;
  void retire(int w) override;

  std::size_t size() const { return options_.args.size(); }
  pid_t pid(int w) const;        // -1 while not running
  int restarts(int w) const;     // times it was started again after an exit (launches not counted)

 private:
  struct Child {
    pid_t pid = -1;
    bool held = false;             // crashed on purpose: wait for recover()
    bool retired = false;          // stopped by its pool: wait for launch()
    std::string launched;          // why launch() asked for its next start; empty: not launched
    TimeUs restart_at_us = kNever; // when to start it again
    int starts = 0;
    int restarts = 0;              // starts after an unexpected exit (or a crash's recovery)
  };

  void loop();
  // Runs in the supervising thread (the parent-death signal follows the thread that forks).
  // REQUIRES: mu_ held.
  void spawn(int w);
  void reap(TimeUs now);

  SupervisorOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Child> children_;  // guarded by mu_
  bool started_ = false;         // guarded by mu_
  bool stopping_ = false;        // guarded by mu_
  std::string spawn_error_;      // guarded by mu_
  std::thread thread_;
};

}  // namespace twinfer::runtime
