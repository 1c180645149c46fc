// A TCP proxy on loopback that injects link faults between the router and one worker: it forwards
// bytes both ways, each chunk read from one side delayed by the link's latency, and by an extra
// 200 ms (TCP's minimum retransmission timeout) per loss: with loss probability p a chunk is "lost"
// k times, k geometric (P(k) = (1 - p) p^k), drawn from a seeded mt19937_64. Chunks of one direction
// keep their order (a late chunk holds back the ones after it, as TCP's in-order delivery does).
// A partition stops forwarding in both directions while the connections stay open (calls hang);
// healing resumes it with what was held.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "serving/faults/fault_scenario.h"
#include "core/time.h"

namespace twinfer::runtime {

// Thread safety: every method may be called from any thread.
class FaultProxy {
 public:
  // Listens on 127.0.0.1:listen_port (0: any free port) and forwards to target_host:target_port.
  // Throws twinfer::Error when it cannot listen.
  FaultProxy(std::string target_host, int target_port, std::uint64_t seed, int listen_port = 0);
  ~FaultProxy();  // stop()

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // From now on each chunk takes latency_us more, and is lost with probability `loss` (each loss
  // adds kRetransmitTimeoutUs). 0, 0: a healthy link. REQUIRES: latency_us >= 0, 0 <= loss < 1.
  void set_link(TimeUs latency_us, double loss);
  void set_partitioned(bool partitioned);

  // Extra delay of one chunk under the current link: latency + kRetransmitTimeoutUs * k.
  TimeUs draw_delay_us();

  // Closes every connection and the listening socket; joins the threads. Idempotent.
  void stop();

 private:
  struct Pipe;
  struct Connection;

  void accept_loop();
  void read_side(std::shared_ptr<Connection> c, Pipe& pipe);
  void write_side(std::shared_ptr<Connection> c, Pipe& pipe);

  std::string target_host_;
  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;  // partition healed, stop
  TimeUs latency_us_ = 0;       // guarded by mu_
  double loss_ = 0;             // guarded by mu_
  bool partitioned_ = false;    // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  std::mt19937_64 rng_;         // guarded by mu_
  std::list<std::shared_ptr<Connection>> connections_;  // guarded by mu_
  std::list<std::thread> threads_;                      // guarded by mu_
  std::thread acceptor_;
};

}  // namespace twinfer::runtime
