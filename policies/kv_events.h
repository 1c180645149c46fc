// KV-cache events: what a worker's prefix cache publishes as blocks are cached and evicted (vLLM's
// KV events: BlockStored, BlockRemoved, AllBlocksCleared), so that a router can index where each
// prefix lives from the workers' own caches (llm-d's precise prefix-cache scorer, Dynamo's KV
// router) instead of estimating it from what it sent where.
//
// A worker's KvBlocks records them as they happen (when asked to); a driver carries them to the
// router: the simulator hands them over at the router's decisions, the embedded runtime through
// each worker engine's KvEventLog, and `twinfer serve` with each worker's state report over gRPC.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_set>
#include <vector>

namespace twinfer {

enum class KvEventKind : std::uint8_t {
  kStored,   // a full block was cached under `key`
  kRemoved,  // the block cached under `key` was evicted
  kCleared,  // the worker's cache was emptied (it crashed or restarted); `key` is 0
};

// `key` is the block's PrefixKeys key at the worker's KV block size.
struct KvEvent {
  std::uint64_t key = 0;
  KvEventKind kind = KvEventKind::kStored;
  bool operator==(const KvEvent& o) const { return key == o.key && kind == o.kind; }
};

// Where a reader is in a KvEventLog: the log it read (its id) and the next event's number.
struct KvEventCursor {
  std::uint64_t log = 0;
  std::uint64_t next = 0;
};

// A worker's events numbered in order, the latest `keep` of them kept, with the keys cached now, so
// that any number of readers, each with its own cursor, can follow it: a reader that fell behind
// what is kept, or that read another log (the worker restarted), starts over from the keys cached
// now. Thread safety: none (its owner locks).
class KvEventLog {
 public:
  // `id` tells this log from an earlier one of the same worker (a restart); not 0.
  explicit KvEventLog(std::uint64_t id, std::size_t keep = std::size_t{1} << 16) : id_(id), keep_(keep) {}

  std::uint64_t id() const { return id_; }
  // The number the next event gets.
  std::uint64_t end() const { return first_ + events_.size(); }
  // Keys cached now.
  std::size_t cached() const { return keys_.size(); }

  void append(const KvEvent& e);
  void append(const std::vector<KvEvent>& events) {
    for (const KvEvent& e : events) append(e);
  }
  // Appends the events after `cursor` to `out` and moves it to end(). When they are not all kept
  // (or the cursor is another log's), appends a kCleared event and then one kStored event per key
  // cached now, and returns false (the reader starts over).
  bool read(KvEventCursor& cursor, std::vector<KvEvent>& out) const;

 private:
  std::uint64_t id_;
  std::size_t keep_;
  std::uint64_t first_ = 0;  // the number of events_.front()
  std::deque<KvEvent> events_;
  std::unordered_set<std::uint64_t> keys_;
};

// An id for a new KvEventLog: never the same twice in a process, and not likely to repeat in another
// (a restarted worker process), so that a reader tells a new log from the one it followed.
std::uint64_t new_kv_event_log_id();

// What a driver offers a router that reads KV events (Router::reads_kv_events): each worker's events
// since the router last took them, in order. Thread safety: called from route() only.
class KvEventSource {
 public:
  virtual ~KvEventSource() = default;
  // Appends worker `worker`'s new events to `out`.
  virtual void take(int worker, std::vector<KvEvent>& out) = 0;
};

}  // namespace twinfer
