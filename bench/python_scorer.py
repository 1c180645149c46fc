"""The cost of a scorer written in Python (twinfer.Scorer) against the built-in scorer it
reimplements: the scored router's queue scorer, on 64 H100s (configs/gpu64.json), the same
routing decisions (checked), side by side, interleaved. Prints a markdown table.

usage: /usr/bin/python3 bench/python_scorer.py [REQUESTS [REPEATS]]   (PYTHONPATH=build/python)
"""
import json
import os
import statistics
import sys

import twinfer

HERE = os.path.dirname(os.path.abspath(__file__))


class PyQueue(twinfer.Scorer):
    """Waiting requests, min-max normalized over the candidates: the built-in `queue` scorer."""

    def __init__(self, params):
        super().__init__()

    def score(self, request, views, candidates):
        waiting = [views[w].waiting for w in candidates]
        lo, hi = min(waiting), max(waiting)
        return [(hi - q) / (hi - lo) if hi > lo else 1.0 for q in waiting]

    def view_use(self):
        return twinfer.ViewUse.queues


def main():
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    twinfer.register_scorer("py_queue", PyQueue)
    cfg = twinfer.load_config(os.path.join(HERE, "..", "configs", "gpu64.json")).with_overrides(
        ["sim.network=none", "sim.timeline=false"])
    trace = twinfer.synthetic_trace({"requests": requests, "rate_rps": 480, "arrival": "poisson",
                                     "input": {"kind": "lognormal", "mean": 800, "sigma": 1.0, "max": 8000},
                                     "output": {"kind": "lognormal", "mean": 200, "sigma": 1.0, "max": 2000}},
                                    seed=1)
    runs = {"queue": [], "py_queue": []}
    workers = {}
    for _ in range(repeats):
        for name in runs:
            router = {"name": "scored", "scorers": [{"name": name, "weight": 1}]}
            res = twinfer.simulate(cfg.with_overrides(["policies.router=" + json.dumps(router)]), trace)
            runs[name].append(res.summary["sim"]["wall_s"])
            workers[name] = list(res.requests["worker"])
    assert workers["queue"] == workers["py_queue"], "the Python scorer routed differently"
    base = statistics.median(runs["queue"])
    print(f"# bench/python_scorer.py: {requests:,} requests on 64 GPUs, {repeats} runs each, interleaved")
    print()
    print("| scorer | simulation wall s (median, min-max) | requests / wall s | extra per routing decision |")
    print("|---|---|---|---|")
    for name, walls in runs.items():
        median = statistics.median(walls)
        extra = f"{(median - base) / requests * 1e6:.1f} µs" if name != "queue" else "—"
        print(f"| {name} | {median:.2f} ({min(walls):.2f}-{max(walls):.2f}) | {requests / median:,.0f} | {extra} |")


if __name__ == "__main__":
    main()
