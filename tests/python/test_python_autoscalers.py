"""Autoscalers written in Python: registered by name, used by the elastic pools of the simulator
and of the embedded runtime, with their samples, decisions and errors."""
import json

import pandas as pd
import pytest

import twinfer
from conftest import config_path


class Schedule(twinfer.Autoscaler):
    """`low` replicas before `at_s`, `high` from then on; logs every sample it sees to `log` (the
    simulator runs in a child process: a file is how the samples come back)."""

    def __init__(self, params):
        super().__init__()
        self.at_us = int(params["at_s"] * 1e6)
        self.low = params.get("low", 1)
        self.high = params["high"]
        self.log = params.get("log")

    def decide(self, sample):
        if self.log:
            with open(self.log, "a") as f:
                f.write(json.dumps({"now_us": sample.now_us, "interval_us": sample.interval_us,
                                    "ready": sample.ready, "starting": sample.starting,
                                    "draining": sample.draining, "current": sample.current,
                                    "arrivals": sample.arrivals, "model": sample.model,
                                    "device": sample.device, "min": sample.min_replicas,
                                    "max": sample.max_replicas}) + "\n")
        if sample.now_us >= self.at_us:
            return twinfer.ScaleDecision(self.high, f"scheduled: {self.high} from {self.at_us} us")
        return self.low


class Raises(twinfer.Autoscaler):
    def __init__(self, params):
        super().__init__()

    def decide(self, sample):
        raise ValueError("no forecast for you")


class Negative(twinfer.Autoscaler):
    def __init__(self, params):
        super().__init__()

    def decide(self, sample):
        return -1


twinfer.register_autoscaler("schedule", Schedule)
twinfer.register_autoscaler("raises", Raises)
twinfer.register_autoscaler("negative", Negative)


def steady_trace(seconds, rate, output=8):
    n = int(seconds * rate)
    return twinfer.trace_from_dataframe(pd.DataFrame({
        "arrival_s": [k / rate for k in range(n)], "input_tokens": [32] * n, "output_tokens": [output] * n}))


def elastic(overrides):
    # configs/cpu_elastic.json: 3 CPU workers of tiny-llm, decisions every 0.25 s, 0.3 s cold start.
    return twinfer.load_config(config_path("cpu_elastic.json")).with_overrides(overrides)


def replicas_at(pool, t_s):
    r = pool["replicas"]
    n = None
    for k, t in enumerate(r["t_s"]):
        if t <= t_s + 1e-9:
            n = (r["ready"][k], r["starting"][k], r["draining"][k])
    return n


def test_registered_autoscalers_are_listed():
    names = twinfer.policy_names()
    assert "schedule" in names["autoscalers"]
    assert {"target_utilization", "queue_depth", "predictive"} <= set(names["autoscalers"])
    assert "weighted" in names["traffic_splits"]


def test_a_python_autoscaler_scales_the_simulated_pool_on_its_schedule(tmp_path):
    log = tmp_path / "samples.jsonl"
    spec = {"name": "schedule", "at_s": 1.0, "high": 3, "log": str(log)}
    cfg = elastic([f"autoscaling.autoscaler={json.dumps(spec)}"])
    trace = steady_trace(3, 20)
    res = twinfer.simulate(cfg, trace)
    s = res.summary
    assert s["requests"]["completed"] == len(trace)
    pool = s["autoscaling"]["pools"][0]
    assert pool["autoscaler"] == "schedule"
    assert pool["scale_ups"] == 1 and pool["scale_downs"] == 0
    assert pool["peak_replicas"] == 3
    # One replica until the decision at 1.0 s starts two more; they are ready 0.3 s later.
    assert replicas_at(pool, 0.99) == (1, 0, 0)
    assert replicas_at(pool, 1.0) == (1, 2, 0)
    assert replicas_at(pool, 1.31) == (3, 0, 0)
    # The started workers served requests, none before they were ready.
    started = res.requests[res.requests["worker"] != res.requests["worker"].iloc[0]]
    assert len(started) > 0
    assert (started["start_us"] >= 1_300_000).all()

    samples = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(samples) >= 8
    assert [x["now_us"] for x in samples] == [250_000 * (k + 1) for k in range(len(samples))]
    assert all(x["interval_us"] == 250_000 for x in samples)
    assert all(x["current"] == x["ready"] + x["starting"] for x in samples)
    assert all((x["model"], x["device"], x["min"], x["max"]) == ("tiny-llm", "CPU", 1, 3) for x in samples)
    assert next(x for x in samples if x["now_us"] == 1_250_000)["starting"] == 2
    # Arrivals are counted per interval: 20 rps x 0.25 s.
    assert sum(x["arrivals"] for x in samples) <= len(trace)
    assert all(x["arrivals"] == 5 for x in samples if x["now_us"] <= 2_000_000)


def test_a_python_autoscaler_runs_in_the_embedded_runtime():
    cfg = elastic(['autoscaling.autoscaler={"name": "schedule", "at_s": 0.5, "high": 2}'])
    trace = steady_trace(2, 10)
    res = twinfer.run(cfg, trace, device="cpu")
    s = res.summary
    assert s["requests"]["completed"] == len(trace)
    pool = s["autoscaling"]["pools"][0]
    assert pool["scale_ups"] >= 1 and pool["peak_replicas"] == 2
    loads = s["run"]["loads"]
    assert [x["why"] for x in loads].count("cold_start") == 1


def test_errors_in_a_python_autoscaler_name_the_key_and_method():
    trace = steady_trace(1, 10)
    with pytest.raises(twinfer.Error, match=r"autoscal.*decide\(\): ValueError: no forecast for you"):
        twinfer.simulate(elastic(["autoscaling.autoscaler.name=raises"]), trace)
    with pytest.raises(twinfer.Error, match=r"autoscaling.autoscaler \(negative\) for tiny-llm: decided -1 replicas; want >= 0"):
        twinfer.simulate(elastic(["autoscaling.autoscaler.name=negative"]), trace)
