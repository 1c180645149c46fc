// Child processes for the tests that run build/bin/twinfer itself (serve, worker, replay, sim, run).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/runtime/net_testing.h"
#include "tests/testing.h"

namespace twinfer::testing {

inline const std::string& twinfer_binary() {
  static const std::string path = std::string(TWINFER_BINARY_DIR) + "/twinfer";
  return path;
}

// Child processes of one test; killed (SIGKILL) and reaped on destruction unless already reaped.
class Children {
 public:
  explicit Children(std::string dir) : dir_(std::move(dir)) {}
  ~Children() {
    for (pid_t pid : live_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }

  // Starts `twinfer args...` with stdout and stderr into <dir>/<log>.
  pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(twinfer_binary().c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const std::string log_path = dir_ + "/" + log;
    pid_t pid = ::fork();
    if (pid == 0) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execv(twinfer_binary().c_str(), argv.data());
      ::_exit(127);
    }
    live_.push_back(pid);
    return pid;
  }

  // True once 127.0.0.1:port accepts connections; false if `pid` exited or `seconds` passed.
  bool wait_listening(pid_t pid, int port, double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < until) {
      if (accepts(port)) return true;
      if (exited(pid)) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  // The exit code of `pid` once it exits; -1 if it did not within `seconds` (or died of a signal).
  int wait_exit(pid_t pid, double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < until) {
      int status;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        forget(pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }

  // True once `pid` has exited (it is reaped then); false while it runs.
  bool exited(pid_t pid) {
    int status;
    if (::waitpid(pid, &status, WNOHANG) != pid) return false;
    forget(pid);
    return true;
  }

  // Runs `twinfer args...` to its end (at most `seconds`); its exit code, -1 past the limit.
  int run(const std::vector<std::string>& args, const std::string& log, double seconds) {
    return wait_exit(spawn(args, log), seconds);
  }

  std::string log(const std::string& name) const { return slurp(dir_ + "/" + name); }

 private:
  void forget(pid_t pid) { live_.erase(std::remove(live_.begin(), live_.end(), pid), live_.end()); }
  std::string dir_;
  std::vector<pid_t> live_;
};

}  // namespace twinfer::testing
