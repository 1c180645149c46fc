import json
import pytest
import twinfer
from conftest import config_path


class AllToFirst(twinfer.Router):
    def __init__(self, params):
        super().__init__()
        self.target = params.get("worker", 0)

    def route(self, request, view):
        return self.target

    def name(self):
        return "all_to_first"


class PyLeastOutstanding(twinfer.Router):
    """The built-in least_outstanding router written in Python: fewest outstanding requests, ties
    broken round-robin from the worker after the last pick."""

    def __init__(self, params):
        super().__init__()
        self.start = 0

    def route(self, request, view):
        workers = view.workers
        candidates = [w.index for w in workers if w.eligible(request) and w.health == twinfer.Health.up]
        if not candidates:
            return twinfer.RouteDecision.reject("no healthy worker")
        first = next((k for k, c in enumerate(candidates) if c >= self.start), 0)
        ordered = candidates[first:] + candidates[:first]
        pick = min(ordered, key=lambda i: workers[i].outstanding)
        self.start = pick + 1
        return pick


class PyLeastOutstandingQueues(PyLeastOutstanding):
    """The same router, declaring that it reads no more than the workers' queues."""

    def view_use(self):
        return twinfer.ViewUse.queues


class BadViewUse(PyLeastOutstanding):
    def view_use(self):
        return "queues"


class HalfAdmission(twinfer.Admission):
    def __init__(self, params):
        super().__init__()

    def admit(self, request, view):
        if request.id % 2 == 1:
            return twinfer.AdmissionDecision.reject("odd id")
        return True


class OneAtATime(twinfer.Batcher):
    """First come, first served, one request at a time, each run whole (a request-level batch)."""

    def __init__(self, params):
        super().__init__()
        self.calls = 0

    def next(self, state, now_us):
        self.calls += 1
        if state.running or not state.waiting:
            return twinfer.BatchPlan()
        first = state.waiting[0]
        seq = state.get(first)
        return twinfer.BatchPlan(kind=twinfer.BatchKind.request_batch,
                                 entries=[twinfer.BatchEntry(first, seq.request.input_tokens)])

    def name(self):
        return "one_at_a_time"


twinfer.register_router("all_to_first", AllToFirst)
twinfer.register_router("py_least_outstanding", PyLeastOutstanding)
twinfer.register_router("py_least_outstanding_queues", PyLeastOutstandingQueues)
twinfer.register_router("bad_view_use", BadViewUse)
twinfer.register_admission("half", HalfAdmission)
twinfer.register_batcher("one_at_a_time", OneAtATime)


def test_registered_names_are_listed():
    names = twinfer.policy_names()
    assert "all_to_first" in names["routers"]
    assert "half" in names["admissions"]
    assert "one_at_a_time" in names["batchers"]


def test_python_router_sending_everything_to_one_worker_raises_p99(h100x8):
    # 200 rps of 500 + 100 tokens: eight H100s keep up, one queues.
    trace = twinfer.synthetic_trace({"requests": 400, "rate_rps": 200, "input": {"kind": "constant", "mean": 500},
                                     "output": {"kind": "constant", "mean": 100}}, seed=3)
    rr = twinfer.simulate(h100x8, trace)
    one = twinfer.simulate(h100x8.with_overrides(["policies.router.name=all_to_first"]), trace)
    assert set(one.requests["worker"]) == {"node/gpu0"}
    assert len(set(rr.requests["worker"])) == 8
    assert one.summary["latency_ms"]["p99"] > 3 * rr.summary["latency_ms"]["p99"]
    assert one.summary["ttft_ms"]["p99"] > 10 * rr.summary["ttft_ms"]["p99"]
    assert one.summary["policies"]["router"] == "all_to_first"


def test_python_router_params_come_from_the_config(h100x8, small_trace):
    cfg = h100x8.with_overrides(["policies.router={\"name\": \"all_to_first\", \"worker\": 3}"])
    res = twinfer.simulate(cfg, small_trace)
    assert set(res.requests["worker"]) == {"node/gpu3"}


def test_python_router_matches_the_builtin_it_reimplements(small_trace):
    cfg = twinfer.load_config(config_path("heterogeneous.json"))
    names = twinfer.policy_names()["routers"]
    assert "least_outstanding" in names
    builtin = twinfer.simulate(cfg.with_overrides(["policies.router.name=least_outstanding"]), small_trace)
    python = twinfer.simulate(cfg.with_overrides(["policies.router.name=py_least_outstanding"]), small_trace)
    assert python.summary["requests"]["completed"] == builtin.summary["requests"]["completed"]
    assert list(python.requests["worker"]) == list(builtin.requests["worker"])


def test_a_python_router_that_declares_its_view_use_lets_workers_run_ahead(h100x8, small_trace):
    assert PyLeastOutstanding({}).view_use() == twinfer.ViewUse.all
    assert PyLeastOutstandingQueues({}).view_use() == twinfer.ViewUse.queues
    every = twinfer.simulate(h100x8.with_overrides(["policies.router.name=py_least_outstanding"]), small_trace)
    queues = twinfer.simulate(h100x8.with_overrides(["policies.router.name=py_least_outstanding_queues"]),
                              small_trace)
    assert list(queues.requests["worker"]) == list(every.requests["worker"])
    assert list(queues.requests["end_us"]) == list(every.requests["end_us"])
    assert queues.summary["sim"]["events"] < every.summary["sim"]["events"]
    with pytest.raises(twinfer.Error, match=r"bad_view_use\)\.view_use\(\): must return a twinfer\.ViewUse"):
        twinfer.simulate(h100x8.with_overrides(["policies.router.name=bad_view_use"]), small_trace)


def test_python_admission_rejecting_odd_ids_rejects_half(h100x8, small_trace):
    res = twinfer.simulate(h100x8.with_overrides(["policies.admission=half"]), small_trace)
    r = res.summary["requests"]
    assert r["rejected"] == 150
    assert r["completed"] + r["dropped"] == 150
    assert res.summary["reasons"]["rejected"] == {"odd id": 150}
    rejected = res.requests[res.requests["outcome"] == "rejected"]
    assert (rejected["id"] % 2 == 1).all()


def test_python_batcher_completes_every_request_one_at_a_time(h100x8):
    trace = twinfer.synthetic_trace({"requests": 60, "rate_rps": 20}, seed=2)
    res = twinfer.simulate(h100x8.with_overrides(["policies.batcher=one_at_a_time"]), trace)
    assert res.summary["requests"]["completed"] == 60
    for w in res.summary["workers"]:
        if w["batches"]:
            assert w["mean_batch_size"] == 1.0
    # One at a time: no two requests overlap on a worker.
    df = res.requests.sort_values(["worker", "start_us"])
    for _, g in df.groupby("worker"):
        assert (g["start_us"].iloc[1:].values >= g["end_us"].iloc[:-1].values - 1000).all()


class Chatty(twinfer.Router):
    def __init__(self, params):
        super().__init__()

    def route(self, request, view):
        if request.id == 0:
            print(f"routing request 0 at {view.now_us} us on {view.workers[0].name} ({view.workers[0].device})")
        return 0


twinfer.register_router("chatty", Chatty)


def test_print_inside_a_policy_reaches_stdout_from_the_simulation_process(h100x8, capfd):
    twinfer.simulate(h100x8.with_overrides(["policies.router=chatty"]), twinfer.synthetic_trace({"requests": 3}))
    assert "routing request 0 at 0 us on node/gpu0 (H100)" in capfd.readouterr().out


def test_simulations_from_two_threads_match_sequential_ones(h100x8, small_trace):
    import threading

    cfg = h100x8.with_overrides(["policies.router.name=py_least_outstanding"])
    expected = [twinfer.simulate(cfg, small_trace, seed=s).requests for s in (1, 2)]
    got = [None, None]

    def work(i):
        got[i] = twinfer.simulate(cfg, small_trace, seed=i + 1).requests

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert got[0].equals(expected[0]) and got[1].equals(expected[1])


class PyQueueScorer(twinfer.Scorer):
    """The scored router's built-in queue scorer written in Python: waiting requests, min-max
    normalized over the candidates, fewer is better."""

    def __init__(self, params):
        super().__init__()

    def score(self, request, views, candidates):
        waiting = [views[w].waiting for w in candidates]
        lo, hi = min(waiting), max(waiting)
        return [(hi - q) / (hi - lo) if hi > lo else 1.0 for q in waiting]

    def view_use(self):
        return twinfer.ViewUse.queues


class Favourite(twinfer.Scorer):
    def __init__(self, params):
        super().__init__()
        self.worker = params["worker"]
        self.count = params.get("count", None)

    def score(self, request, views, candidates):
        scores = [1.0 if w == self.worker else 0.0 for w in candidates]
        return scores[: self.count] if self.count is not None else scores


twinfer.register_scorer("py_queue", PyQueueScorer)
twinfer.register_scorer("favourite", Favourite)


def scored(*scorers):
    return "policies.router=" + json.dumps({"name": "scored", "scorers": list(scorers)})


def test_python_scorer_matches_the_builtin_it_reimplements(h100x8, small_trace):
    assert "py_queue" in twinfer.policy_names()["scorers"]
    busy = twinfer.synthetic_trace({"requests": 600, "rate_rps": 150, "input": {"kind": "lognormal", "mean": 800},
                                    "output": {"kind": "lognormal", "mean": 200}}, seed=5)
    builtin = twinfer.simulate(h100x8.with_overrides([scored({"name": "queue", "weight": 2})]), busy)
    python = twinfer.simulate(h100x8.with_overrides([scored({"name": "py_queue", "weight": 2})]), busy)
    assert {f"node/gpu{i}" for i in range(8)} <= set(builtin.requests["worker"])
    assert list(python.requests["worker"]) == list(builtin.requests["worker"])
    assert list(python.requests["end_us"]) == list(builtin.requests["end_us"])


def test_python_scorer_is_weighted_against_the_builtin_ones_and_its_errors_name_it(h100x8, small_trace):
    heavy = twinfer.simulate(h100x8.with_overrides(
        [scored({"name": "favourite", "worker": 5, "weight": 10}, {"name": "queue", "weight": 1})]), small_trace)
    assert set(heavy.requests["worker"]) == {"node/gpu5"}
    light = twinfer.simulate(h100x8.with_overrides(
        [scored({"name": "favourite", "worker": 5, "weight": 0.5}, {"name": "queue", "weight": 1})]), small_trace)
    assert len(set(light.requests["worker"])) > 1
    with pytest.raises(twinfer.Error, match=r"scorers\[0\] \(favourite\)\.score\(\): returned 2 scores for 8 "
                                            r"candidates"):
        twinfer.simulate(h100x8.with_overrides([scored({"name": "favourite", "worker": 1, "count": 2})]), small_trace)
    with pytest.raises(twinfer.Error, match=r"scorers\[0\] \(favourite\): KeyError: 'worker'"):
        twinfer.simulate(h100x8.with_overrides([scored({"name": "favourite"})]), small_trace)
