#include "runtime/rpc/worker_supervisor.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "runtime/rpc/wire.h"

namespace twinfer::runtime {

std::string self_executable() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw Error(std::string("cannot read /proc/self/exe: ") + std::strerror(errno));
  return std::string(buf, std::size_t(n));
}

std::vector<int> free_loopback_ports(int count) {
  // Hold every socket until all are chosen, so that the OS gives distinct ports.
  std::vector<int> fds, ports;
  for (int i = 0; i < count; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      for (int f : fds) ::close(f);
      if (fd >= 0) ::close(fd);
      throw Error(std::string("cannot find a free loopback port: ") + std::strerror(errno));
    }
    fds.push_back(fd);
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int f : fds) ::close(f);
  return ports;
}

WorkerSupervisor::WorkerSupervisor(SupervisorOptions options)
    : options_(std::move(options)), children_(options_.args.size()) {
  for (std::size_t w = 0; w < options_.start_retired.size() && w < children_.size(); ++w) {
    children_[w].retired = options_.start_retired[w];
  }
}

WorkerSupervisor::~WorkerSupervisor() { stop(); }

void WorkerSupervisor::start() {
  std::unique_lock<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
  cv_.wait(lock, [this] { return started_; });
  if (!spawn_error_.empty()) {
    const std::string error = spawn_error_;
    lock.unlock();
    stop();
    throw Error(error);
  }
}

void WorkerSupervisor::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void WorkerSupervisor::crash(int w) {
  std::lock_guard<std::mutex> lock(mu_);
  Child& c = children_.at(std::size_t(w));
  if (c.retired) return;  // not running: nothing to crash
  c.held = true;
  c.restart_at_us = kNever;
  if (c.pid > 0) ::kill(c.pid, SIGKILL);
  if (options_.log) std::fprintf(stderr, "twinfer serve: crash: killed worker %d (pid %d)\n", w, int(c.pid));
}

void WorkerSupervisor::recover(int w) {
  std::lock_guard<std::mutex> lock(mu_);
  Child& c = children_.at(std::size_t(w));
  if (c.retired) return;
  c.held = false;
  c.restart_at_us = monotonic_now_us();
  cv_.notify_all();
}

void WorkerSupervisor::hold(int w) {
  std::lock_guard<std::mutex> lock(mu_);
  Child& c = children_.at(std::size_t(w));
  if (c.retired) return;
  c.held = true;
}

void WorkerSupervisor::launch(int w, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  Child& c = children_.at(std::size_t(w));
  c.retired = false;
  c.held = false;
  c.launched = why.empty() ? "launched" : why;
  c.restart_at_us = monotonic_now_us();
  cv_.notify_all();
}

void WorkerSupervisor::retire(int w) {
  std::lock_guard<std::mutex> lock(mu_);
  Child& c = children_.at(std::size_t(w));
  c.retired = true;
  c.held = false;
  c.restart_at_us = kNever;
  if (c.pid > 0) {
    ::kill(c.pid, SIGTERM);
    if (options_.log) std::fprintf(stderr, "twinfer serve: stopping worker %d (pid %d): drained\n", w, int(c.pid));
  }
}

pid_t WorkerSupervisor::pid(int w) const {
  std::lock_guard<std::mutex> lock(mu_);
  return children_.at(std::size_t(w)).pid;
}

int WorkerSupervisor::restarts(int w) const {
  std::lock_guard<std::mutex> lock(mu_);
  return children_.at(std::size_t(w)).restarts;
}

void WorkerSupervisor::spawn(int w) {
  Child& c = children_[std::size_t(w)];
  std::vector<std::string> args = {options_.binary};
  args.insert(args.end(), options_.args[std::size_t(w)].begin(), options_.args[std::size_t(w)].end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec (the parent has many threads).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  if (pid < 0) {
    spawn_error_ = "cannot start worker " + std::to_string(w) + ": " + std::strerror(errno);
    return;
  }
  c.pid = pid;
  c.restart_at_us = kNever;
  const char* how = "started";
  const std::string why = c.launched.empty() ? "" : ": " + c.launched;
  if (c.launched.empty() && c.starts > 0) {
    how = "restarted";
    ++c.restarts;
  }
  c.launched.clear();
  ++c.starts;
  if (options_.log) std::fprintf(stderr, "twinfer serve: %s worker %d (pid %d)%s\n", how, w, int(pid), why.c_str());
}

void WorkerSupervisor::reap(TimeUs now) {
  for (std::size_t w = 0; w < children_.size(); ++w) {
    Child& c = children_[w];
    int status = 0;
    if (c.pid <= 0 || ::waitpid(c.pid, &status, WNOHANG) != c.pid) continue;
    if (options_.log && !stopping_) {
      if (WIFSIGNALED(status)) {
        std::fprintf(stderr, "twinfer serve: worker %zu (pid %d) died of %s\n", w, int(c.pid),
                     strsignal(WTERMSIG(status)));
      } else {
        std::fprintf(stderr, "twinfer serve: worker %zu (pid %d) exited with status %d\n", w, int(c.pid),
                     WEXITSTATUS(status));
      }
    }
    c.pid = -1;
    if (!c.held && !c.retired && !stopping_) {
      c.restart_at_us = now + static_cast<TimeUs>(options_.restart_after_s * 1e6);
      if (options_.log) {
        std::fprintf(stderr, "twinfer serve: restarting worker %zu in %g s\n", w, options_.restart_after_s);
      }
    }
  }
}

void WorkerSupervisor::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (std::size_t w = 0; w < children_.size() && spawn_error_.empty(); ++w) {
    if (!children_[w].retired) spawn(int(w));
  }
  started_ = true;
  cv_.notify_all();
  while (!stopping_) {
    const TimeUs now = monotonic_now_us();
    reap(now);
    for (std::size_t w = 0; w < children_.size(); ++w) {
      Child& c = children_[w];
      if (c.pid <= 0 && !c.held && !c.retired && c.restart_at_us <= now) spawn(int(w));
    }
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
  for (Child& c : children_) {
    if (c.pid > 0) ::kill(c.pid, SIGTERM);
  }
  const TimeUs kill_at = monotonic_now_us() + static_cast<TimeUs>(options_.stop_timeout_s * 1e6);
  for (;;) {
    reap(monotonic_now_us());
    bool alive = false;
    for (Child& c : children_) alive |= c.pid > 0;
    if (!alive) break;
    if (monotonic_now_us() >= kill_at) {
      for (Child& c : children_) {
        if (c.pid > 0) ::kill(c.pid, SIGKILL);
      }
    }
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    lock.lock();
  }
}

}  // namespace twinfer::runtime
