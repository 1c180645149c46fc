#include "runtime/engine/cpu_affinity.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace twinfer::runtime {

std::vector<int> parse_cpulist(const std::string& text) {
  std::vector<int> cores;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    while (!part.empty() && (part.back() == '\n' || part.back() == ' ')) part.pop_back();
    if (part.empty()) continue;
    try {
      std::size_t used = 0;
      auto dash = part.find('-');
      int lo = std::stoi(part.substr(0, dash), &used);
      int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
      if (lo < 0 || hi < lo) throw std::invalid_argument(part);
      for (int c = lo; c <= hi; ++c) cores.push_back(c);
    } catch (const std::exception&) {
      throw Error("malformed cpulist '" + text + "' at '" + part + "'");
    }
  }
  return cores;
}

std::vector<std::vector<int>> numa_nodes() {
  std::vector<std::vector<int>> nodes;
  for (int n = 0;; ++n) {
    std::ifstream in("/sys/devices/system/node/node" + std::to_string(n) + "/cpulist");
    if (!in) break;
    std::string text;
    std::getline(in, text);
    auto cores = parse_cpulist(text);
    if (!cores.empty()) nodes.push_back(cores);
  }
  if (nodes.empty()) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    std::vector<int> all;
    for (int c = 0; c < (online > 0 ? online : 1); ++c) all.push_back(c);
    nodes.push_back(all);
  }
  return nodes;
}

std::vector<int> worker_cores(int workers, const std::vector<std::vector<int>>& nodes) {
  std::vector<int> cores;
  std::vector<std::size_t> next(nodes.size(), 0);
  for (int w = 0; w < workers; ++w) {
    std::size_t node = static_cast<std::size_t>(w) % nodes.size();
    cores.push_back(nodes[node][next[node]++ % nodes[node].size()]);
  }
  return cores;
}

bool pin_current_thread(int core) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

}  // namespace twinfer::runtime
