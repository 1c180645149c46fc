import json
import pandas as pd
import pytest

import twinfer

TINY_TRACE = {"requests": 12, "rate_rps": 40, "input": {"kind": "uniform", "min": 8, "max": 48},
              "output": {"kind": "uniform", "min": 2, "max": 8}}


def test_run_on_cpu_tiny_completes_every_request(cpu_tiny):
    trace = twinfer.synthetic_trace(TINY_TRACE, seed=1)
    res = twinfer.run(cpu_tiny, trace, device="cpu")
    assert res.summary["requests"]["completed"] == 12
    assert res.summary["run"]["device"] == "cpu"
    df = res.requests
    assert len(df) == 12
    assert (df["end_us"] >= df["first_token_us"]).all()
    assert set(df["worker"]) <= set(cpu_tiny.worker_names)


def test_python_router_runs_in_the_embedded_runtime(cpu_tiny):
    class ToSecond(twinfer.Router):
        def __init__(self, params):
            super().__init__()

        def route(self, request, view):
            assert len(view) == 2
            return 1

    twinfer.register_router("to_second", ToSecond)
    res = twinfer.run(cpu_tiny.with_overrides(["policies.router=to_second"]), twinfer.synthetic_trace(TINY_TRACE))
    assert set(res.requests["worker"]) == {cpu_tiny.worker_names[1]}
    assert res.summary["policies"]["router"] == "to_second"


def test_python_batcher_error_in_a_worker_thread_is_raised_after_the_run(cpu_tiny):
    class Broken(twinfer.Batcher):
        def __init__(self, params):
            super().__init__()

        def next(self, state, now_us):
            if state.waiting:
                raise ZeroDivisionError("step size zero")
            return twinfer.BatchPlan()

    twinfer.register_batcher("broken", Broken)
    with pytest.raises(twinfer.Error, match="ZeroDivisionError: step size zero"):
        twinfer.run(cpu_tiny.with_overrides(["policies.batcher=broken"]), twinfer.synthetic_trace(TINY_TRACE))


def test_infer_batch_returns_one_row_per_task_in_order(cpu_tiny):
    tasks = [(8 + (i % 5) * 8, 1 + i % 4) for i in range(50)]
    df = twinfer.infer_batch(cpu_tiny, tasks, device="cpu")
    assert len(df) == 50
    assert list(df["task"]) == list(range(50))
    assert list(df["input_tokens"]) == [t[0] for t in tasks]
    assert list(df["output_tokens"]) == [t[1] for t in tasks]
    assert (df["outcome"] == "completed").all()
    assert set(df["worker"]) == set(cpu_tiny.worker_names)  # both workers took part
    assert (df["latency_s"] > 0).all()
    assert (df["end_s"] >= df["start_s"]).all()


def test_submit_batch_gives_a_future(cpu_tiny):
    future = twinfer.submit_batch(cpu_tiny, pd.DataFrame({"input_tokens": [16] * 6, "output_tokens": [2] * 6}))
    df = future.result(timeout=120)
    assert len(df) == 6 and (df["outcome"] == "completed").all()


def test_python_router_error_in_the_embedded_runtime_is_raised(cpu_tiny):
    class Failing(twinfer.Router):
        def __init__(self, params):
            super().__init__()

        def route(self, request, view):
            if request.id == 3:
                raise LookupError("no worker for three")
            return 0

    twinfer.register_router("failing_in_run", Failing)
    with pytest.raises(twinfer.Error, match=r"route\(\): LookupError: no worker for three"):
        twinfer.run(cpu_tiny.with_overrides(["policies.router=failing_in_run"]), twinfer.synthetic_trace(TINY_TRACE))
    # The module is usable afterwards.
    res = twinfer.run(cpu_tiny, twinfer.synthetic_trace(TINY_TRACE))
    assert res.summary["requests"]["completed"] == 12


def test_calibrate_fits_a_real_runs_step_log_and_the_simulator_reads_it(cpu_tiny, tmp_path):
    trace = twinfer.synthetic_trace(dict(TINY_TRACE, requests=40, rate_rps=20), seed=2)
    res = twinfer.run(cpu_tiny.with_overrides(["sim.step_log=true"]), trace, out_dir=tmp_path / "real")
    steps = pd.read_csv(tmp_path / "real" / "steps.csv")
    assert len(steps) == res.summary["run"]["steps"]
    table = twinfer.calibrate(cpu_tiny, tmp_path / "real", holdout_every=0, out=tmp_path / "cost.json")
    (entry,) = table["entries"]
    assert entry["fit"]["train"]["steps"] == len(steps)
    assert table["meta"]["engine"]["requests"] > 0
    sim = twinfer.simulate(cpu_tiny.with_overrides(["policies.cost_model.name=calibrated",
                                                    f"policies.cost_model.path={tmp_path / 'cost.json'}"]), trace)
    assert sim.summary["policies"]["cost_model"] == "calibrated"
    assert sim.summary["requests"]["completed"] == 40
    with pytest.raises(twinfer.Error, match="steps.csv"):
        twinfer.calibrate(cpu_tiny, tmp_path)


def test_calibrate_to_a_real_runs_client_log_improves_on_the_datasheet_roofline(cpu_tiny, tmp_path):
    """A real run's per-request results, as vllm bench serve saves them, fitted from the CPU
    profile's roofline: the fitted simulation is closer to the real requests than the roofline."""
    trace = twinfer.synthetic_trace(dict(TINY_TRACE, requests=40, rate_rps=10), seed=5)
    twinfer.run(cpu_tiny, trace, out_dir=tmp_path / "real")
    r = pd.read_csv(tmp_path / "real" / "requests.csv")
    ok = r["outcome"] == "completed"
    result = {"input_lens": r["input_tokens"].tolist(),
              "output_lens": r["output_tokens"].where(ok, 0).tolist(),
              "ttfts": ((r["first_token_us"] - r["arrival_us"]) / 1e6).where(ok, 0.0).tolist(),
              "latencies": ((r["end_us"] - r["arrival_us"]) / 1e6).where(ok, 0.0).tolist(),
              "start_times": (1000.0 + r["arrival_us"] / 1e6).tolist(),
              "errors": ["" if o else "failed" for o in ok]}
    (tmp_path / "vllm.json").write_text(json.dumps(result))
    table = twinfer.calibrate(cpu_tiny, client_logs=tmp_path / "vllm.json", holdout_fraction=0,
                              max_evaluations=150, out=tmp_path / "cost.json")
    fit = table["meta"]["client_fit"]
    assert fit["prior"] == "policies.cost_model (roofline)"
    assert fit["objective"]["fit"] < fit["objective"]["prior"]
    (log,) = fit["logs"]
    assert log["requests"] == int(ok.sum()) and log["left_out"] == int((~ok).sum())
    assert log["fit"]["fitted"]["ttft_ms"]["per_request_mape"] < log["prior"]["fitted"]["ttft_ms"]["per_request_mape"]
    sim = twinfer.simulate(cpu_tiny.with_overrides(["policies.cost_model.name=calibrated",
                                                    f"policies.cost_model.path={tmp_path / 'cost.json'}",
                                                    f"sim.dispatch_us={table['meta']['engine']['dispatch_us']}"]),
                           trace)
    assert sim.summary["requests"]["completed"] == 40
    with pytest.raises(ValueError, match="not both or neither"):
        twinfer.calibrate(cpu_tiny)


def test_python_scorer_decides_alike_in_the_simulator_and_the_embedded_runtime(cpu_tiny):
    class Second(twinfer.Scorer):
        def __init__(self, params):
            super().__init__()

        def score(self, request, views, candidates):
            return [1.0 if views[w].index == 1 else 0.0 for w in candidates]

    twinfer.register_scorer("second", Second)
    cfg = cpu_tiny.with_overrides(['policies.router={"name": "scored", "scorers": [{"name": "second"}]}'])
    trace = twinfer.synthetic_trace(TINY_TRACE)
    ran = twinfer.run(cfg, trace)
    simulated = twinfer.simulate(cfg, trace)
    assert set(ran.requests["worker"]) == {cpu_tiny.worker_names[1]}
    assert list(ran.requests["worker"]) == list(simulated.requests["worker"])
    assert ran.summary["requests"]["completed"] == 12
