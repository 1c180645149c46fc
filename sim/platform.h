// The SimGrid platform of a cluster config: one host for the router (front end) and one SimGrid host
// per model instance (worker), each behind its physical host's network link. For the KV host tier's
// copies, each physical host's memory and each instance's GPU memory are hosts too, joined by the
// instance's host link (its GPUs' PCIe links together), apart from the network.
#pragma once

#include <vector>

#include <simgrid/s4u.hpp>

#include "core/cluster_config.h"
#include "core/time.h"

namespace twinfer::sim {

// Worker hosts compute at this speed, so that an Exec of `t` flops lasts `t` microseconds.
constexpr double kFlopsPerSecond = 1e6;

struct Platform {
  simgrid::s4u::Host* router = nullptr;
  std::vector<simgrid::s4u::Host*> workers;  // by instance index
  std::vector<TimeUs> one_way_latency_us;    // router <-> worker, links' latencies only
  std::vector<double> route_bandwidth_bps;   // router <-> worker, the narrowest link (bytes/s)
  // By instance index: its physical host's memory, and its GPUs' memory behind its host link.
  std::vector<simgrid::s4u::Host*> host_memory;
  std::vector<simgrid::s4u::Host*> gpu_memory;
};

// Builds and seals the platform in the current engine's root zone.
// REQUIRES: a simgrid::s4u::Engine exists and has no platform yet.
Platform build_platform(const ClusterConfig& cluster);

}  // namespace twinfer::sim
