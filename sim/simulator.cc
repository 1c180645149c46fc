#include "sim/simulator.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include "core/error.h"
#include "serving/recorder.h"
#include "sim/sim_driver.h"

namespace twinfer::sim {
namespace {

void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

std::string read_all(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// The child's one message: "ok\n<summary json>" or "error\n<message>".
[[noreturn]] void child_main(int fd, const RunConfig& config, const Trace& trace, const SimRunOptions& options) {
  std::string message;
  int code = 0;
  try {
    if (options.in_child) options.in_child();
    message = "ok\n" + run_in_process(config, trace, options).dump();
  } catch (const std::exception& e) {
    message = std::string("error\n") + e.what();
    code = 1;
  }
  write_all(fd, message);
  ::close(fd);
  std::fflush(nullptr);
  ::_exit(code);
}

}  // namespace

nlohmann::json simulate(const RunConfig& config, const Trace& trace, const SimRunOptions& options) {
  if (!options.out_dir.empty()) make_output_dir(options.out_dir);
  Trace scaled_copy;
  if (options.rate_scale != 1.0) scaled_copy = scale_trace(trace, options.rate_scale);
  const Trace& scaled = options.rate_scale != 1.0 ? scaled_copy : trace;
  if (options.in_process) return run_in_process(config, scaled, options);

  int fds[2];
  if (::pipe(fds) != 0) throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot fork the simulation: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(fds[0]);
    child_main(fds[1], config, scaled, options);
  }
  if (options.in_parent) options.in_parent();
  ::close(fds[1]);
  std::string message = read_all(fds[0]);
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    throw Error(std::string("simulation process died: ") + strsignal(WTERMSIG(status)));
  }
  auto nl = message.find('\n');
  std::string head = message.substr(0, nl);
  std::string body = nl == std::string::npos ? "" : message.substr(nl + 1);
  if (head == "ok") return nlohmann::json::parse(body);
  if (head == "error") throw Error(body);
  throw Error("simulation process exited with status " + std::to_string(WEXITSTATUS(status)) + " and no result");
}

}  // namespace twinfer::sim
