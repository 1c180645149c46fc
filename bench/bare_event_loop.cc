#include "bench/bare_event_loop.h"

#include <chrono>
#include <memory>
#include <queue>
#include <vector>

#include "serving/run_policies.h"
#include "policies/worker_state.h"

namespace twinfer::bench {
namespace {

struct Event {
  TimeUs at_us;
  std::int64_t seq;  // FIFO among equal times, as SimGrid's timers
  int kind;          // 0 arrival, 1 batch done, 2 wake
  int worker;
  bool operator>(const Event& o) const { return at_us != o.at_us ? at_us > o.at_us : seq > o.seq; }
};

struct Worker {
  const InstanceSpec* instance;
  std::unique_ptr<Batcher> batcher;
  std::unique_ptr<WorkerState> state;
  BatchPlan plan;
  bool busy = false;
  TimeUs wake_at_us = kNever;
};

}  // namespace

BareLoopResult run_bare_event_loop(const RunConfig& config, const Trace& trace, std::uint64_t seed) {
  auto t0 = std::chrono::steady_clock::now();
  RunPolicies policies = make_run_policies(config, seed);
  const CostModel* cost = policies.cost.get();
  Admission* admission = policies.admission.get();
  Router* router = policies.router.get();
  std::vector<Worker> workers;
  std::vector<WorkerView> views;
  for (const auto& inst : config.cluster.instances) {
    auto batcher = make_worker_batcher(config, inst, *cost, seed);
    auto state = std::make_unique<WorkerState>(batcher->kv_capacity());
    Worker worker;
    worker.instance = &inst;
    worker.batcher = std::move(batcher);
    worker.state = std::move(state);
    workers.push_back(std::move(worker));
    WorkerView v;
    v.index = inst.index;
    v.instance = &inst;
    views.push_back(v);
  }

  BareLoopResult res;
  double latency_sum_ms = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events;
  std::int64_t seq = 0;
  auto push = [&](TimeUs at, int kind, int worker) { events.push(Event{at, seq++, kind, worker}); };
  auto end_all = [&](std::vector<Finished>& done, TimeUs now) {
    for (auto& f : done) {
      ++res.ended;
      if (f.outcome == Outcome::kCompleted) {
        ++res.completed;
        latency_sum_ms += ms_from_us(now - f.seq.request.arrival_us);
      }
    }
  };
  auto kick = [&](int wi, TimeUs now) {
    Worker& w = workers[wi];
    if (w.busy) return;
    w.plan = w.batcher->next(*w.state, now);
    auto dropped = w.state->begin(w.plan, now);
    end_all(dropped, now);
    views[wi].waiting = static_cast<int>(w.state->waiting().size());
    views[wi].running = static_cast<int>(w.state->running().size());
    if (w.plan.idle()) {
      if (w.plan.wake_at_us != kNever && w.plan.wake_at_us < w.wake_at_us) {
        w.wake_at_us = std::max(w.plan.wake_at_us, now);
        push(w.wake_at_us, 2, wi);
      }
      return;
    }
    w.busy = true;
    push(now + std::max<TimeUs>(1, w.state->plan_time_us(w.plan, *cost, *w.instance)), 1, wi);
  };

  std::size_t next = 0;
  if (!trace.requests.empty()) push(trace.requests[0].arrival_us, 0, -1);
  while (!events.empty()) {
    Event e = events.top();
    events.pop();
    ++res.events;
    if (e.kind == 0) {
      const Request& r = trace.requests[next++];
      if (next < trace.requests.size()) push(trace.requests[next].arrival_us, 0, -1);
      ClusterView view{e.at_us, &views};
      if (!admission->admit(r, view).admitted) {
        ++res.ended;
        continue;
      }
      RouteDecision d = route_checked(*router, r, view);
      if (d.rejected()) {
        ++res.ended;
        continue;
      }
      workers[d.worker].state->enqueue(r, e.at_us);
      kick(d.worker, e.at_us);
    } else if (e.kind == 1) {
      Worker& w = workers[e.worker];
      w.busy = false;
      auto done = w.state->finish(w.plan, e.at_us);
      end_all(done, e.at_us);
      kick(e.worker, e.at_us);
    } else if (workers[e.worker].wake_at_us == e.at_us) {
      workers[e.worker].wake_at_us = kNever;
      kick(e.worker, e.at_us);
    }
  }
  res.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.mean_latency_ms = res.completed ? latency_sum_ms / double(res.completed) : 0;
  return res;
}

}  // namespace twinfer::bench
