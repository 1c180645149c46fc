#include "policies/routers/kv_event_index.h"

#include <algorithm>

#include "core/block_hashes.h"
#include "core/error.h"

namespace twinfer {

void KvEventIndex::take(const ClusterView& view, const std::string& who) {
  if (view.kv_events == nullptr) {
    throw Error(who + ": reads the workers' KV events, which this driver does not deliver");
  }
  for (std::size_t w = 0; w < view.size(); ++w) {
    taken_.clear();
    view.kv_events->take(int(w), taken_);
    apply(int(w), taken_);
  }
}

void KvEventIndex::apply(int worker, const std::vector<KvEvent>& events) {
  if (static_cast<std::size_t>(worker) >= keys_.size()) keys_.resize(static_cast<std::size_t>(worker) + 1);
  for (const KvEvent& e : events) {
    switch (e.kind) {
      case KvEventKind::kStored: stored(worker, e.key); break;
      case KvEventKind::kRemoved: removed(worker, e.key); break;
      case KvEventKind::kCleared: cleared(worker); break;
    }
  }
}

void KvEventIndex::stored(int worker, std::uint64_t key) {
  if (!keys_[static_cast<std::size_t>(worker)].insert(key).second) return;
  holders_[key].push_back(worker);
}

void KvEventIndex::drop_holder(int worker, std::uint64_t key) {
  const auto it = holders_.find(key);
  std::vector<int>& holders = it->second;
  holders.erase(std::find(holders.begin(), holders.end(), worker));
  if (holders.empty()) holders_.erase(it);
}

void KvEventIndex::removed(int worker, std::uint64_t key) {
  if (keys_[static_cast<std::size_t>(worker)].erase(key) > 0) drop_holder(worker, key);
}

void KvEventIndex::cleared(int worker) {
  std::unordered_set<std::uint64_t>& keys = keys_[static_cast<std::size_t>(worker)];
  for (std::uint64_t key : keys) drop_holder(worker, key);
  keys.clear();
}

std::int64_t KvEventIndex::blocks(int worker) const {
  return static_cast<std::size_t>(worker) < keys_.size()
             ? static_cast<std::int64_t>(keys_[static_cast<std::size_t>(worker)].size())
             : 0;
}

void KvEventIndex::match(const Request& request, const std::vector<int>& candidates,
                         const std::vector<WorkerView>& views, std::vector<std::int64_t>& matched) {
  matched.assign(views.size(), 0);
  // One walk per block size among the candidates (their keys differ with it).
  sizes_.clear();
  for (int w : candidates) {
    const int bt = views[static_cast<std::size_t>(w)].kv_block_tokens;
    if (bt > 0 && std::find(sizes_.begin(), sizes_.end(), bt) == sizes_.end()) sizes_.push_back(bt);
  }
  for (int bt : sizes_) {
    const std::int64_t blocks = std::int64_t{request.input_tokens} / bt;
    PrefixKeys keys(request.prefix, request.input_tokens, request.id, bt);
    // matched[w] == j * bt: worker w holds the first j blocks; it goes on only if it holds block j.
    for (std::int64_t j = 0; j < blocks && keys.next_is_shared(); ++j) {
      const auto it = holders_.find(keys.next());
      if (it == holders_.end()) break;
      bool any = false;
      for (int w : it->second) {
        const auto i = static_cast<std::size_t>(w);
        if (i < views.size() && views[i].kv_block_tokens == bt && matched[i] == j * bt) {
          matched[i] = (j + 1) * bt;
          any = true;
        }
      }
      if (!any) break;
    }
  }
}

}  // namespace twinfer
