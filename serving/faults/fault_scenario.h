// Fault scenarios: timed faults injected into a run, the same file for the simulator
// (`twinfer sim --faults F`) and the real runtime (`twinfer run|serve --faults F`).
//
//   {"faults": [
//     {"at_s": 600, "type": "crash", "worker": 3, "recover_after_s": 120},
//     {"at_s": 300, "type": "slowdown", "worker": "node0/gpu1", "factor": 3, "duration_s": 60},
//     {"at_s": 100, "type": "link", "worker": 2, "latency_ms": 50, "loss": 0.05, "duration_s": 30},
//     {"at_s": 100, "type": "partition", "worker": 2, "duration_s": 30},
//     {"at_s": 900, "type": "router_restart", "downtime_s": 5},
//     {"at_s": 400, "type": "device_error", "worker": 1, "duration_s": 20}
//   ]}
//
// Times are from the start of the run (the trace's time 0). A worker is named by its index in the
// config's instances or by its instance name. Without duration_s (recover_after_s for a crash) a
// fault lasts to the end of the run. Faults of one type on one worker must not overlap.
#pragma once

#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/cluster_config.h"
#include "core/time.h"

namespace twinfer {

enum class FaultType {
  kCrash,          // the worker dies: its queue, batch and KV cache are lost; it restarts empty if it recovers
  kSlowdown,       // every step of the worker takes `factor` times as long
  kLink,           // messages between router and worker take latency_us more; each is lost with
                   // probability `loss` (and resent by the transport after a retransmission timeout)
  kPartition,      // nothing crosses the link; the worker keeps running
  kRouterRestart,  // the router is down for duration_us: new requests are refused, those in flight are lost
  kDeviceError,    // the worker's device fails its next step while the fault lasts: the worker fails (the
                   // sequences it runs end dropped, the requests it holds go back to the router) and is
                   // down until the fault ends, then restarts empty
};

const char* fault_type_name(FaultType type);

// TCP's minimum retransmission timeout on Linux: what each lost copy of a message costs.
inline constexpr TimeUs kRetransmitTimeoutUs = 200'000;

// Delay of one message over a faulty link: latency_us, plus kRetransmitTimeoutUs for each lost copy
// (each copy is lost with probability `loss`, independently; at most 30), drawn from `rng`.
// The simulator, the embedded runtime and the TCP fault proxy all draw link delays here.
TimeUs link_delay_us(TimeUs latency_us, double loss, std::mt19937_64& rng);

struct Fault {
  FaultType type = FaultType::kCrash;
  TimeUs at_us = 0;
  TimeUs duration_us = kNever;  // how long it lasts (a crash: until recovery); kNever: to the end
  int worker = -1;              // -1 for router_restart
  double factor = 1;            // kSlowdown
  TimeUs latency_us = 0;        // kLink: added one-way latency
  double loss = 0;              // kLink: probability that a message is lost, in [0, 1)
  std::string where;            // "faults.json: faults[2]", for messages

  TimeUs end_us() const { return duration_us == kNever ? kNever : at_us + duration_us; }
};

// One change of state, in time order: a fault starts or ends.
struct FaultEvent {
  TimeUs at_us = 0;
  bool starts = true;           // false: the fault ends (recovery, slowdown over, link healed, router back)
  const Fault* fault = nullptr; // points into FaultScenario::faults
};

struct FaultScenario {
  std::string source;
  std::vector<Fault> faults;    // in file order

  bool empty() const { return faults.empty(); }
  // Every start and end, sorted by time; at equal times ends come before starts, then file order.
  std::vector<FaultEvent> events() const;
};

// Throws twinfer::Error naming source, the fault's index and the key (e.g.
// "f.json: faults[1].factor: must be >= 1") on an unknown type or key, a worker the cluster does
// not have, a negative time, or overlapping faults of one type on one worker.
FaultScenario parse_fault_scenario(const nlohmann::json& j, const std::string& source, const ClusterConfig& cluster);

// Reads and parses `path`; JSON syntax errors name the file, line and column.
FaultScenario load_fault_scenario(const std::string& path, const ClusterConfig& cluster);

}  // namespace twinfer
