// Cost of one policy decision, per built-in policy: what a router or batcher adds to every request
// or iteration, in the simulator and in the real runtime alike.
#include <benchmark/benchmark.h>

#include "policies/registry.h"
#include "policies/worker_state.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

// One decision, then what a driver does to the views after it: the picked worker gains a request,
// another one (in turn) loses one, and both are touched in the view's change list (as the simulator
// does; routers that keep indexes read it, the others ignore it). Without `offer_changes` the view
// has no change list, as in the runtime: every router scans.
void BM_Route(benchmark::State& state, const std::string& name, bool offer_changes) {
  testing::ViewBuilder b;
  const int n = static_cast<int>(state.range(0));
  for (int i = 0; i < n; ++i) b.add_worker();
  for (int i = 0; i < n; ++i) {
    b.worker(i).waiting = (i * 7) % 13;
    b.worker(i).outstanding_work_us = (i * 7919) % 100000;
    b.worker(i).utilization_ewma = (i % 10) / 10.0;
  }
  testing::FakeCostModel cost;
  PolicyContext ctx;
  ctx.cost = &cost;
  ctx.seed = 1;
  auto router = router_registry().make(name, ctx, "bench");
  ViewChanges changes(b.size());
  auto view = b.view(0);
  if (offer_changes) view.changes = &changes;
  Request r = testing::make_request(0);
  int leaving = 0;
  for (auto _ : state) {
    r.id++;
    r.session = std::to_string(r.id % 1000);
    const RouteDecision d = router->route(r, view);
    benchmark::DoNotOptimize(d);
    if (d.worker >= 0) {
      ++b.worker(d.worker).waiting;
      changes.touch(std::size_t(d.worker));
    }
    leaving = (leaving + 1) % n;
    if (b.worker(leaving).waiting > 0) --b.worker(leaving).waiting;
    changes.touch(std::size_t(leaving));
  }
}

void register_router_benchmarks() {
  for (const auto& name : router_registry().names()) {
    benchmark::RegisterBenchmark(("route/" + name).c_str(), BM_Route, name, true)->Arg(8)->Arg(64)->Arg(1024)->Arg(4096);
  }
  // The routers that keep an index, scanning instead (a view without a change list).
  for (const char* name : {"least_outstanding", "random", "power_of_two"}) {
    benchmark::RegisterBenchmark((std::string("route_scan/") + name).c_str(), BM_Route, name, false)
        ->Arg(8)->Arg(64)->Arg(1024)->Arg(4096);
  }
}

// One continuous-batching step with `range(0)` running sequences in decode.
void BM_ContinuousStep(benchmark::State& state) {
  testing::ViewBuilder b;
  b.add_worker();
  testing::FakeCostModel cost;
  PolicyContext ctx;
  ctx.cost = &cost;
  ctx.instance = &b.instance(0);
  auto batcher = batcher_registry().make(nlohmann::json{{"name", "continuous"}, {"max_num_seqs", 1024}}, ctx, "bench");
  WorkerState ws(batcher->kv_capacity());
  TimeUs now = 0;
  RequestId id = 0;
  const auto running = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    while (ws.running().size() + ws.waiting().size() < running) {
      ws.enqueue(testing::make_request(id++, now, 64, 512), now);
    }
    BatchPlan plan = batcher->next(ws, now);
    ws.begin(plan, now);
    now += ws.plan_time_us(plan, cost, b.instance(0));
    benchmark::DoNotOptimize(ws.finish(plan, now));
  }
}
BENCHMARK(BM_ContinuousStep)->Arg(16)->Arg(64)->Arg(256);

const bool registered = (register_router_benchmarks(), true);

}  // namespace
}  // namespace twinfer
