#include "serving/link_faults.h"

#include <algorithm>
#include <cassert>

namespace twinfer {

LinkFaults::LinkFaults(std::size_t workers, std::uint64_t seed) : links_(workers), rng_(seed) {}

void LinkFaults::set_link(int w, TimeUs latency_us, double loss) {
  assert(latency_us >= 0 && loss >= 0 && loss < 1);
  Link& l = links_.at(std::size_t(w));
  l.latency_us = latency_us;
  l.loss = loss;
  l.touched = l.touched || latency_us > 0 || loss > 0;
}

void LinkFaults::set_partitioned(int w, bool partitioned) { links_.at(std::size_t(w)).partitioned = partitioned; }

TimeUs LinkFaults::delivery_us(int w, LinkDirection direction, TimeUs now_us) {
  Link& l = links_[std::size_t(w)];
  assert(!l.partitioned);
  TimeUs& last = l.last_delivery_us[static_cast<int>(direction)];
  if (l.latency_us == 0 && l.loss == 0 && last <= now_us) return now_us;  // a healthy link: at once
  const TimeUs delay_us = link_delay_us(l.latency_us, l.loss, rng_);
  last = std::max(last, now_us + delay_us);
  return last;
}

}  // namespace twinfer
