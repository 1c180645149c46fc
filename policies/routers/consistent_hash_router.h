// Consistent hashing: requests with the same key (session or model) go to the same worker, and a
// worker going down moves only its own keys.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/params.h"
#include "policies/router.h"

namespace twinfer {

// FNV-1a, 64 bits: a fixed, portable string hash (std::hash differs across standard libraries).
std::uint64_t fnv1a_64(std::string_view bytes);
// FNV-1a followed by the SplitMix64 finalizer, which spreads the near-equal FNV values of short,
// similar strings ("w0#1", "w0#2") evenly over the ring.
std::uint64_t ring_hash(std::string_view bytes);

// A ring of `virtual_nodes` points per worker (at ring_hash("<instance name>#<i>")). A request's
// key hashes to a point; the request goes to the first worker clockwise from it that is a candidate
// (eligible; suspect workers only when no healthy one is). The ring always holds every worker of
// the view, so workers going down or up move only the keys whose owner changed.
//
// Keys: "session" uses Request::session, or the decimal request id when the session is empty (so
// requests without a session spread evenly); "model" uses Request::model.
//
// Bounded loads (Mirrokni et al., "Consistent Hashing with Bounded Loads"): with bounded_load = c
// > 0, the walk also skips workers whose outstanding() exceeds c * (mean outstanding over the
// candidates) + 1. The least loaded candidate never exceeds that, so a worker is always found.
class ConsistentHashRouter : public Router {
 public:
  enum class Key { kSession, kModel };
  struct Options {
    int virtual_nodes = 100;  // points per worker, >= 1
    Key key = Key::kSession;  // JSON: "session" | "model"
    double bounded_load = 0;  // 0: off; else the load factor c, >= 1
  };
  // Reads "virtual_nodes", "key" and "bounded_load". Does not call p.done().
  static Options read_options(JsonParams& p);

  explicit ConsistentHashRouter(const Options& options);
  RouteDecision route(const Request& request, const ClusterView& view) override;
  std::string name() const override { return "consistent_hash"; }
  ViewUse view_use() const override { return ViewUse::kQueues; }

  // Where `request` lands on the ring.
  std::uint64_t key_hash(const Request& request) const;

 private:
  struct VirtualNode {
    std::uint64_t hash;
    int worker;
  };
  void rebuild_ring_if_changed(const ClusterView& view);
  // The load bound of bounded loads over the current candidates; +infinity when off.
  double load_limit(const ClusterView& view) const;

  Options options_;
  std::vector<VirtualNode> ring_;                  // sorted by (hash, worker)
  std::vector<const InstanceSpec*> ring_workers_;  // the instances the ring was built for
  std::vector<int> candidates_;
  std::vector<char> is_candidate_;                 // by worker index
};

}  // namespace twinfer
