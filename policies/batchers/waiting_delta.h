// Lets a batcher that keeps its own index of a worker's waiting queue visit only what is new.
#pragma once

#include <cstddef>
#include <deque>

#include "core/request.h"

namespace twinfer {

// Where new arrivals start in `waiting`, given that the batcher's index holds `known_count` ids for
// which `is_known(id)` is true. New arrivals are appended at the back, so the scan stops at the
// first known id from the back and costs O(new arrivals).
struct WaitingDelta {
  std::size_t first_new = 0;  // waiting[first_new..] are new to the index
  bool reset = false;         // the queue changed behind the index (e.g. admission purged it):
                              // clear the index and add all of waiting (first_new is 0)
};

template <class IsKnown>
WaitingDelta waiting_delta(const std::deque<RequestId>& waiting, std::size_t known_count, IsKnown is_known) {
  std::size_t first_new = waiting.size();
  while (first_new > 0 && !is_known(waiting[first_new - 1])) --first_new;
  if (known_count + (waiting.size() - first_new) != waiting.size()) return WaitingDelta{0, true};
  return WaitingDelta{first_new, false};
}

}  // namespace twinfer
