#include "policies/routers/consistent_hash_router.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "policies/routers/router_candidates.h"

namespace twinfer {

std::uint64_t fnv1a_64(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::uint64_t ring_hash(std::string_view bytes) {
  std::uint64_t z = fnv1a_64(bytes);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

ConsistentHashRouter::Options ConsistentHashRouter::read_options(JsonParams& p) {
  Options opts;
  std::string key = "session";
  p.get("virtual_nodes", opts.virtual_nodes);
  p.get("key", key);
  p.get("bounded_load", opts.bounded_load);
  p.require(opts.virtual_nodes >= 1, "virtual_nodes", "must be at least 1");
  p.require(key == "session" || key == "model", "key", "must be \"session\" or \"model\", got \"" + key + "\"");
  p.require(opts.bounded_load == 0 || opts.bounded_load >= 1, "bounded_load",
            "must be 0 (off) or a load factor >= 1");
  opts.key = key == "model" ? Key::kModel : Key::kSession;
  return opts;
}

ConsistentHashRouter::ConsistentHashRouter(const Options& options) : options_(options) {
  assert(options_.virtual_nodes >= 1);
}

std::uint64_t ConsistentHashRouter::key_hash(const Request& request) const {
  if (options_.key == Key::kModel) return ring_hash(request.model.str());
  if (!request.session.empty()) return ring_hash(request.session.str());
  return ring_hash(std::to_string(request.id));
}

void ConsistentHashRouter::rebuild_ring_if_changed(const ClusterView& view) {
  bool same = ring_workers_.size() == view.size();
  for (std::size_t i = 0; same && i < view.size(); ++i) same = ring_workers_[i] == view[i].instance;
  if (same) return;
  ring_workers_.clear();
  ring_.clear();
  for (const WorkerView& w : view.all()) {
    ring_workers_.push_back(w.instance);
    for (int v = 0; v < options_.virtual_nodes; ++v) {
      ring_.push_back({ring_hash(w.instance->name + "#" + std::to_string(v)), w.index});
    }
  }
  std::sort(ring_.begin(), ring_.end(), [](const VirtualNode& a, const VirtualNode& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.worker < b.worker;
  });
}

double ConsistentHashRouter::load_limit(const ClusterView& view) const {
  if (options_.bounded_load == 0) return std::numeric_limits<double>::infinity();
  double total = 0;
  for (int w : candidates_) total += view[w].outstanding();
  return options_.bounded_load * total / static_cast<double>(candidates_.size()) + 1;
}

RouteDecision ConsistentHashRouter::route(const Request& request, const ClusterView& view) {
  collect_candidates(request, view, candidates_);
  if (candidates_.empty()) return RouteDecision::reject(no_candidate_reason(request, view));
  rebuild_ring_if_changed(view);
  is_candidate_.assign(view.size(), 0);
  for (int w : candidates_) is_candidate_[w] = 1;
  double limit = load_limit(view);

  std::uint64_t h = key_hash(request);
  auto start = std::lower_bound(ring_.begin(), ring_.end(), h,
                                [](const VirtualNode& node, std::uint64_t x) { return node.hash < x; });
  std::size_t first = static_cast<std::size_t>(start - ring_.begin());
  for (std::size_t k = 0; k < ring_.size(); ++k) {
    int w = ring_[(first + k) % ring_.size()].worker;
    if (is_candidate_[w] && view[w].outstanding() <= limit) return RouteDecision::to(w);
  }
  assert(false && "the least loaded candidate is always within the load limit");
  return RouteDecision::reject("consistent_hash: no worker within the load bound");
}

}  // namespace twinfer
