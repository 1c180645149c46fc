"""Runs of the simulator and of the embedded runtime, their results, and batch inference."""

import concurrent.futures
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from . import _twinfer
from .traces import trace_from_dataframe


class Result:
    """One run's outputs: summary (dict, as summary.json), requests (DataFrame of requests.csv,
    read on first use), and the folder holding the files."""

    def __init__(self, summary, out_dir, keep=None):
        self.summary = summary
        self.out_dir = out_dir
        self._keep = keep  # a TemporaryDirectory when out_dir was not given
        self._requests = None

    @property
    def requests(self):
        if self._requests is None:
            self._requests = pd.read_csv(os.path.join(self.out_dir, "requests.csv"), keep_default_na=False,
                                         na_values={"worker": [""]}, dtype={"worker": "string"})
        return self._requests

    @property
    def timeline_path(self):
        return os.path.join(self.out_dir, "timeline.json")

    def __repr__(self):
        r = self.summary.get("requests", {})
        return (f"<twinfer.Result {r.get('completed', 0)}/{r.get('total', 0)} completed, "
                f"p99 {self.summary.get('latency_ms', {}).get('p99', float('nan')):.1f} ms, in {self.out_dir}>")


def _out_dir(out_dir):
    if out_dir is not None:
        return str(out_dir), None
    keep = tempfile.TemporaryDirectory(prefix="twinfer_run_")
    return keep.name, keep


def _resolve_trace(config, trace):
    if trace is None:
        if not config.default_trace:
            raise _twinfer.Error("no trace given and the config has no workload.trace")
        return _twinfer.read_trace(config.default_trace)
    if isinstance(trace, pd.DataFrame):
        return trace_from_dataframe(trace)
    if isinstance(trace, (str, os.PathLike)):
        return _twinfer.read_trace(str(trace))
    return trace


def simulate(config, trace=None, seed=1, rate_scale=1.0, out_dir=None, progress=False, faults=None):
    """Simulates `trace` (a Trace, DataFrame or path; default: the config's workload.trace) on the
    config's cluster with SimGrid, injecting the fault scenario at path `faults` if given. Each run
    happens in a forked child: fresh and bit-exact."""
    trace = _resolve_trace(config, trace)
    path, keep = _out_dir(out_dir)
    summary = _twinfer._simulate(config, trace, seed=seed, rate_scale=rate_scale, out_dir=path, progress=progress,
                                 faults=str(faults) if faults else "")
    return Result(summary, path, keep)


def run(config, trace=None, seed=1, rate_scale=1.0, out_dir=None, device="cpu", pin_threads=False, progress=False,
        faults=None):
    """Serves `trace` for real on the embedded runtime (one worker thread per model instance, on
    `device`: "cpu" or "cuda"), replaying arrivals in real time, with the fault scenario at path
    `faults` (real crashes, slowdowns, link delays, partitions, router restarts) if given."""
    trace = _resolve_trace(config, trace)
    path, keep = _out_dir(out_dir)
    summary = _twinfer._run(config, trace, seed=seed, rate_scale=rate_scale, out_dir=path, device=device,
                            pin_threads=pin_threads, progress=progress, faults=str(faults) if faults else "")
    return Result(summary, path, keep)


def _tasks_frame(tasks):
    if isinstance(tasks, pd.DataFrame):
        frame = tasks[["input_tokens", "output_tokens"]].copy()
    else:
        frame = pd.DataFrame(list(tasks), columns=["input_tokens", "output_tokens"])
    if frame.empty:
        raise ValueError("infer_batch: no tasks")
    frame.insert(0, "arrival_s", 0.0)
    return frame


def infer_batch(config, tasks, device="cpu", seed=1, out_dir=None):
    """Offline batch inference: every task (input_tokens, output_tokens) arrives at time 0 and the
    config's router, admission and batchers spread them over its workers, which run in parallel on
    the embedded runtime. Returns one row per task, in task order: task, input_tokens,
    output_tokens, worker, outcome, reason, start_s, first_token_s, end_s, latency_s."""
    trace = trace_from_dataframe(_tasks_frame(tasks), source="infer_batch")
    result = run(config, trace, seed=seed, out_dir=out_dir, device=device)
    df = result.requests.sort_values("id").reset_index(drop=True)
    out = pd.DataFrame({"task": df["id"], "input_tokens": df["input_tokens"], "output_tokens": df["output_tokens"],
                        "worker": df["worker"], "outcome": df["outcome"], "reason": df["reason"]})
    for column in ("start", "first_token", "end"):
        us = df[f"{column}_us"]
        out[f"{column}_s"] = us.where(us >= 0) / 1e6
    out["latency_s"] = out["end_s"] - df["arrival_us"] / 1e6
    out.attrs["summary"] = result.summary
    return out


_executor = None


def submit_batch(config, tasks, device="cpu", seed=1):
    """infer_batch in a background thread (the GIL is released while it runs); returns a
    concurrent.futures.Future of its DataFrame. Batches submitted together run one after another."""
    global _executor
    if _executor is None:
        _executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="twinfer_batch")
    return _executor.submit(infer_batch, config, list(tasks) if not isinstance(tasks, pd.DataFrame) else tasks,
                            device, seed)


def _write_cost_file(table, out):
    if out is not None:
        Path(out).write_text(json.dumps(table, indent=2) + "\n")
    return table


def calibrate(config, step_logs=None, holdout_every=5, out=None, client_logs=None, prior=None,
              holdout_fraction=0.3, max_evaluations=1000, seed=1):
    """Fits the `calibrated` cost model, to steps or to client-side request logs.

    With `step_logs` (as `twinfer calibrate --steps`): the steps that runs logged (runs made with
    ``config.with_overrides(["sim.step_log=true"])``), a path or a list of paths, each a steps.csv
    or a run folder holding one; every K-th step (`holdout_every`) is held out.

    With `client_logs` (as `twinfer calibrate --client-log`): per-request measurements, a path or a
    list of paths, each the JSON of ``vllm bench serve --save-result --save-detailed`` or a
    requests.csv; the simulator is fitted in the loop to each request's TTFT and TPOT, from `prior`
    (a cost file as a dict) or the config's roofline or calibrated model; the last
    `holdout_fraction` of each log's requests are held out; at most `max_evaluations` simulations.

    Returns the cost file as a dict (its entries' "coefficients", the fit report, "meta"."engine"
    the dispatch delay) and writes it to `out` when given."""
    def paths(p):
        return [str(p)] if isinstance(p, (str, Path)) else [str(x) for x in p]

    if (step_logs is None) == (client_logs is None):
        raise ValueError("calibrate: give step_logs or client_logs, not both or neither")
    if client_logs is not None:
        table = _twinfer._calibrate_client(config, paths(client_logs), prior=prior, holdout_fraction=holdout_fraction,
                                           max_evaluations=max_evaluations, seed=seed)
        return _write_cost_file(table, out)
    return _write_cost_file(_twinfer._calibrate(config, paths(step_logs), holdout_every=holdout_every), out)


def profile(config, device="cpu", repeats=3, seed=1, pin_threads=False, keep_steps=None, out=None):
    """Runs probe workloads through the real worker engine on `device` for every (device, model,
    tp) of the config, logs every step, and fits the `calibrated` cost model (as `twinfer profile`).
    Returns the cost file as a dict and writes it to `out` when given."""
    table = _twinfer._profile(config, device=device, repeats=repeats, seed=seed, pin_threads=pin_threads,
                              keep_steps=str(keep_steps) if keep_steps else "")
    return _write_cost_file(table, out)
