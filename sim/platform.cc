#include "sim/platform.h"

#include <algorithm>
#include <map>
#include <string>

namespace twinfer::sim {
namespace sg4 = simgrid::s4u;

namespace {

sg4::Link* make_link(sg4::NetZone* zone, const std::string& name, const LinkSpec& spec) {
  // SimGrid wants bytes/s and seconds.
  auto* link = zone->create_split_duplex_link(name, spec.bandwidth_gbps * 1e9);
  link->set_latency(spec.latency_us * 1e-6);
  return link;
}

void route_to_center(sg4::NetZone* zone, sg4::Host* host, sg4::Link* link) {
  zone->add_route(host->get_netpoint(), nullptr, nullptr, nullptr, {{link, sg4::LinkInRoute::Direction::UP}}, true);
}

}  // namespace

Platform build_platform(const ClusterConfig& cluster) {
  Platform p;
  // A star: every host reaches the others through its own link to a non-blocking switch. Instances
  // of one physical host share that host's NIC, so their payloads contend for it.
  auto* zone = sg4::create_star_zone("cluster");
  p.router = zone->create_host("router", kFlopsPerSecond);
  route_to_center(zone, p.router, make_link(zone, "router_nic", cluster.router_nic));

  std::map<std::string, sg4::Link*> host_nic;
  std::map<std::string, const LinkSpec*> host_link;
  std::map<std::string, double> memory_gbps;
  for (const auto& inst : cluster.instances) memory_gbps[inst.host] += inst.host_link.bandwidth_gbps * inst.tp();
  std::map<std::string, sg4::Host*> memory;
  for (const auto& h : cluster.hosts) {
    host_nic[h.name] = make_link(zone, h.name + "_nic", h.nic);
    host_link[h.name] = &h.nic;
    // Host memory feeds all of its GPUs' links at once: unless its bandwidth is given, the links
    // are the bottlenecks. (A host with no instance gets a link all the same: every host of the
    // zone needs one.)
    const double gbps = h.memory_bandwidth_gbps > 0      ? h.memory_bandwidth_gbps
                        : memory_gbps.count(h.name) > 0 ? memory_gbps[h.name]
                                                        : h.host_link.bandwidth_gbps;
    memory[h.name] = zone->create_host(h.name + "#memory", kFlopsPerSecond);
    route_to_center(zone, memory[h.name], make_link(zone, h.name + "_memory", LinkSpec{gbps, 0}));
  }
  for (const auto& inst : cluster.instances) {
    auto* host = zone->create_host(inst.name, kFlopsPerSecond);
    route_to_center(zone, host, host_nic.at(inst.host));
    p.workers.push_back(host);
    const LinkSpec& nic = *host_link.at(inst.host);
    p.one_way_latency_us.push_back(us_from_s((cluster.router_nic.latency_us + nic.latency_us) * 1e-6));
    p.route_bandwidth_bps.push_back(std::min(cluster.router_nic.bandwidth_gbps, nic.bandwidth_gbps) * 1e9);
    p.host_memory.push_back(memory.at(inst.host));
    auto* gpu = zone->create_host(inst.name + "#gpu_memory", kFlopsPerSecond);
    const LinkSpec pcie{inst.host_link.bandwidth_gbps * inst.tp(), inst.host_link.latency_us};
    route_to_center(zone, gpu, make_link(zone, inst.name + "_host_link", pcie));
    p.gpu_memory.push_back(gpu);
  }
  zone->seal();
  return p;
}

}  // namespace twinfer::sim
