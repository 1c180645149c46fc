// The links between a router and its workers as faults shape them, for every carrier that models
// its own messages (the simulator, the embedded runtime; the gRPC runtime puts a real TCP proxy in
// between instead): added latency, lost messages resent after a retransmission timeout,
// partitions. Messages on one link and in one direction are delivered in the order they were
// sent, as over one TCP connection.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "serving/faults/fault_scenario.h"
#include "core/time.h"

namespace twinfer {

enum class LinkDirection { kToWorker = 0, kToRouter = 1 };

// Thread safety: none (the carrier's router thread owns it).
class LinkFaults {
 public:
  LinkFaults(std::size_t workers, std::uint64_t seed);

  // A link fault on worker w starts (latency_us one way; each send lost with probability `loss`,
  // in [0, 1)) or ends (both 0).
  void set_link(int w, TimeUs latency_us, double loss);
  void set_partitioned(int w, bool partitioned);
  bool partitioned(int w) const { return links_.at(std::size_t(w)).partitioned; }
  // True while no link fault ever touched w's link: its messages go at once, in order.
  bool pristine(int w) const { return !links_[std::size_t(w)].touched; }

  // When a message sent now on w's link in `direction` arrives: now + latency + k * 200 ms, k the
  // number of losses before a send gets through (geometric, seeded draws), and never before the
  // previous message of that direction. REQUIRES: !partitioned(w) (held messages wait instead).
  TimeUs delivery_us(int w, LinkDirection direction, TimeUs now_us);

 private:
  struct Link {
    TimeUs latency_us = 0;
    double loss = 0;
    bool partitioned = false;
    bool touched = false;  // a link fault set latency or loss once
    TimeUs last_delivery_us[2] = {0, 0};
  };
  std::vector<Link> links_;
  std::mt19937_64 rng_;
};

}  // namespace twinfer
