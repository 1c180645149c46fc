#include "policies/routers/prefix_index.h"

#include <algorithm>
#include <cassert>

namespace twinfer {

std::int64_t PrefixIndex::match(const Request& request, std::size_t workers, std::vector<std::int64_t>& matched) const {
  matched.assign(workers, 0);
  const std::int64_t blocks = std::int64_t{request.input_tokens} / block_tokens_;
  PrefixKeys keys(request.prefix, request.input_tokens, request.id, block_tokens_);
  // matched[w] == j: worker w holds the first j blocks; it goes on only if it holds block j too.
  for (std::int64_t j = 0; j < blocks && keys.next_is_shared(); ++j) {
    const auto it = holders_.find(keys.next());
    if (it == holders_.end()) break;
    bool any = false;
    for (const Holder& h : it->second) {
      const auto w = static_cast<std::size_t>(h.worker);
      if (w < workers && matched[w] == j) {
        matched[w] = j + 1;
        any = true;
      }
    }
    if (!any) break;
  }
  return blocks;
}

PrefixIndex::Log& PrefixIndex::log_of(int worker) {
  if (static_cast<std::size_t>(worker) >= logs_.size()) logs_.resize(static_cast<std::size_t>(worker) + 1);
  return logs_[static_cast<std::size_t>(worker)];
}

void PrefixIndex::record(const Request& request, int worker, std::int64_t capacity) {
  Log& log = log_of(worker);
  const std::int64_t blocks = std::int64_t{request.input_tokens} / block_tokens_;
  PrefixKeys keys(request.prefix, request.input_tokens, request.id, block_tokens_);
  for (std::int64_t j = 0; j < blocks && keys.next_is_shared(); ++j) {
    const std::uint64_t key = keys.next();
    const std::uint64_t stamp = ++clock_;
    std::vector<Holder>& holders = holders_[key];
    auto h = std::find_if(holders.begin(), holders.end(), [worker](const Holder& x) { return x.worker == worker; });
    if (h == holders.end()) {
      holders.push_back(Holder{worker, stamp});
      ++log.live;
    } else {
      h->stamp = stamp;  // its older log entry is stale now
    }
    log.entries.emplace_back(key, stamp);
  }
  while (capacity > 0 && log.live > capacity) evict_oldest(worker);
  // Touches leave stale entries behind; drop them once they outnumber the live ones.
  if (log.entries.size() > static_cast<std::size_t>(4 * log.live + 64)) {
    std::deque<std::pair<std::uint64_t, std::uint64_t>> kept;
    for (const auto& [key, stamp] : log.entries) {
      const auto it = holders_.find(key);
      if (it == holders_.end()) continue;
      for (const Holder& h : it->second) {
        if (h.worker == worker && h.stamp == stamp) kept.emplace_back(key, stamp);
      }
    }
    log.entries.swap(kept);
  }
}

bool PrefixIndex::pop_oldest(int worker) {
  Log& log = log_of(worker);
  const auto [key, stamp] = log.entries.front();
  log.entries.pop_front();
  const auto it = holders_.find(key);
  if (it == holders_.end()) return false;
  std::vector<Holder>& holders = it->second;
  auto h = std::find_if(holders.begin(), holders.end(),
                        [&](const Holder& x) { return x.worker == worker && x.stamp == stamp; });
  if (h == holders.end()) return false;  // a stale entry: the block was recorded again later
  holders.erase(h);
  if (holders.empty()) holders_.erase(it);
  --log.live;
  return true;
}

void PrefixIndex::evict_oldest(int worker) {
  Log& log = log_of(worker);
  while (!log.entries.empty()) {
    if (pop_oldest(worker)) return;
  }
  assert(false && "no live block to evict");
}

void PrefixIndex::forget_through(std::uint64_t stamp) {
  for (std::size_t w = 0; w < logs_.size(); ++w) {
    Log& log = logs_[w];
    while (!log.entries.empty() && log.entries.front().second <= stamp) pop_oldest(static_cast<int>(w));
  }
}

std::int64_t PrefixIndex::blocks(int worker) const {
  return static_cast<std::size_t>(worker) < logs_.size() ? logs_[static_cast<std::size_t>(worker)].live : 0;
}

}  // namespace twinfer
