// Pinning worker threads to cores, spread over the host's NUMA nodes.
#pragma once

#include <string>
#include <vector>

namespace twinfer::runtime {

// The cores of each NUMA node (from /sys/devices/system/node), or one node holding every online
// core when the host does not say.
std::vector<std::vector<int>> numa_nodes();

// Parses a Linux cpulist such as "0-3,8,10-11". Throws twinfer::Error on a malformed list.
std::vector<int> parse_cpulist(const std::string& text);

// One core per worker: workers alternate between NUMA nodes and take each node's cores in order,
// wrapping around when there are more workers than cores.
std::vector<int> worker_cores(int workers, const std::vector<std::vector<int>>& nodes);

// Pins the calling thread to `core`. Returns false (and changes nothing) if the OS refuses.
bool pin_current_thread(int core);

}  // namespace twinfer::runtime
