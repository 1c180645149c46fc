// What a router knows of where prompt prefixes live from the workers' own KV events (llm-d's
// precise prefix-cache scorer, Dynamo's KV router with KV events): the keys each worker reported
// cached and not yet evicted. Unlike PrefixIndex it is as exact as the events are fresh: a block
// the worker evicted leaves it, and a block it never kept (a request preempted, a prompt shorter
// than a block) never enters it.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/request.h"
#include "policies/cluster_view.h"
#include "policies/kv_events.h"

namespace twinfer {

// Thread safety: none (a router's).
class KvEventIndex {
 public:
  // Takes every worker's new events from view.kv_events and applies them. Throws twinfer::Error
  // naming `who` (the router) when the view carries none.
  void take(const ClusterView& view, const std::string& who);
  // Applies worker `worker`'s events, in order.
  void apply(int worker, const std::vector<KvEvent>& events);
  // Sets matched[w] for each candidate w to the tokens of `request`'s prompt that worker w holds in
  // its leading cached blocks (whole blocks of its KV block size, views[w].kv_block_tokens; 0 for a
  // worker that does not track KV blocks). Entries of workers that are not candidates are set too
  // (views.size() of them in all); only the candidates' mean anything.
  void match(const Request& request, const std::vector<int>& candidates, const std::vector<WorkerView>& views,
             std::vector<std::int64_t>& matched);
  // Keys worker `worker` holds, as its events tell.
  std::int64_t blocks(int worker) const;

 private:
  void stored(int worker, std::uint64_t key);
  void removed(int worker, std::uint64_t key);
  void cleared(int worker);
  // Takes `worker` off the holders of `key`, which it holds.
  void drop_holder(int worker, std::uint64_t key);

  std::unordered_map<std::uint64_t, std::vector<int>> holders_;  // key -> workers holding it
  std::vector<std::unordered_set<std::uint64_t>> keys_;          // by worker
  std::vector<int> sizes_;                                       // scratch: block sizes of a match
  std::vector<KvEvent> taken_;                                   // scratch: one worker's new events
};

}  // namespace twinfer
