// A burst against real processes on loopback: `twinfer serve --spawn-workers` with the bundled CPU
// config (protection.limits.max_queued_requests 1024) and `twinfer replay` sending 20,000 requests
// at time zero, three times. Every request ends exactly once, the excess rejected at admission
// "queue full", nothing admitted is dropped (heartbeats travel on connections of their own, so no
// worker is called down under the load), and the router serves on afterwards.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/runtime/net_testing.h"
#include "tests/runtime/process_testing.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

// A /proc/<pid>/status field in kB ("VmHWM", "VmRSS"); -1 when absent.
long status_kb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

TEST(BurstProcesses, ABurstIsShedAtAdmissionAndNothingAdmittedIsLost) {
  const std::string dir = ::testing::TempDir() + "/burst_" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0755);
  testing::Children children(dir);
  const int n = 20000;
  const std::string trace = dir + "/burst.csv";
  {
    std::ofstream out(trace);
    out << "arrival_s,input_tokens,output_tokens\n";
    for (int i = 0; i < n; ++i) out << "0,16,4\n";
  }
  const int port = testing::free_port();
  const int metrics = testing::free_port();
  const std::string config = std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json";
  const pid_t serve = children.spawn({"serve", "--config", config, "--spawn-workers", "--listen",
                                      "127.0.0.1:" + std::to_string(port), "--metrics-port", std::to_string(metrics)},
                                     "serve.log");
  ASSERT_TRUE(children.wait_listening(serve, port, 60)) << children.log("serve.log");
  for (int burst = 0; burst < 3; ++burst) {
    SCOPED_TRACE("burst " + std::to_string(burst));
    const std::string out = dir + "/out" + std::to_string(burst);
    ASSERT_EQ(children.run({"replay", "--trace", trace, "--target", "127.0.0.1:" + std::to_string(port), "--out", out},
                           "replay" + std::to_string(burst) + ".log", 300),
              0)
        << children.log("replay" + std::to_string(burst) + ".log");
    std::istringstream rows(testing::slurp(out + "/requests.csv"));
    std::string line;
    std::getline(rows, line);
    std::vector<int> seen(n, 0);
    int completed = 0;
    int rejected = 0;
    int other = 0;
    while (std::getline(rows, line)) {
      const std::vector<std::string> f = testing::csv_fields(line);
      ASSERT_GE(f.size(), 8u) << line;
      const int id = std::stoi(f[0]);
      ASSERT_TRUE(id >= 0 && id < n) << line;
      ++seen[std::size_t(id)];
      if (f[6] == "completed") {
        ++completed;
      } else if (f[6] == "rejected" && f[7].rfind("queue full", 0) == 0) {
        ++rejected;
      } else if (++other <= 5) {
        ADD_FAILURE() << "request " << id << " ended " << f[6] << ": " << f[7];
      }
    }
    for (int i = 0; i < n; ++i) ASSERT_EQ(seen[std::size_t(i)], 1) << "request " << i;
    EXPECT_EQ(other, 0);
    EXPECT_GE(completed, 1024);
    std::printf("[ info     ] burst %d: %d completed, %d rejected \"queue full\", %d other; router VmHWM %ld kB, "
                "VmRSS %ld kB\n",
                burst, completed, rejected, other, status_kb(serve, "VmHWM"), status_kb(serve, "VmRSS"));
  }
  const std::string page = testing::http_get(metrics, "/metrics");
  EXPECT_NE(page.find("twinfer_worker_failures_total{worker=\"cpu/cpu0\"} 0"), std::string::npos) << page;
  EXPECT_NE(page.find("twinfer_worker_failures_total{worker=\"cpu/cpu1\"} 0"), std::string::npos) << page;
  ::kill(serve, SIGTERM);
  EXPECT_EQ(children.wait_exit(serve, 60), 0) << children.log("serve.log");
}

}  // namespace
}  // namespace twinfer
