"""Parameter sweeps: a grid of config overrides x load levels, each point one simulation, run in
parallel processes (fork) with a progress bar. Only orchestration: every run is simulate()."""

import itertools
import json
import multiprocessing
import sys
import time

import pandas as pd

from .runs import simulate

# Set in the parent before the pool forks, so that workers inherit the config and trace (neither
# can be pickled) and receive only the point to run.
_shared = {}

METRICS = {
    "completed": ("requests", "completed"),
    "rejected": ("requests", "rejected"),
    "dropped": ("requests", "dropped"),
    "timed_out": ("requests", "timed_out"),
    "latency_p50_ms": ("latency_ms", "p50"),
    "latency_p99_ms": ("latency_ms", "p99"),
    "latency_mean_ms": ("latency_ms", "mean"),
    "ttft_p50_ms": ("ttft_ms", "p50"),
    "ttft_p99_ms": ("ttft_ms", "p99"),
    "tpot_p50_ms": ("tpot_ms", "p50"),
    "tpot_p99_ms": ("tpot_ms", "p99"),
    "queue_p99_ms": ("queue_ms", "p99"),
    "throughput_rps": ("throughput_rps",),
    "goodput_rps": ("goodput_rps",),
    "tokens_per_s": ("tokens_per_s",),
    "slo_attainment": ("slo_attainment",),
    "duration_s": ("duration_s",),
}


def flatten_summary(summary):
    """The summary's headline numbers as one flat dict (missing ones are None)."""
    row = {}
    for column, path in METRICS.items():
        value = summary
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        row[column] = value
    return row


def _assignment(key, value):
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    return f"{key}={value if isinstance(value, str) else json.dumps(value)}"


def _run_point(point):
    overrides, rate_scale = point
    config, trace, seed = _shared["config"], _shared["trace"], _shared["seed"]
    row = dict(overrides)
    row["rate_scale"] = rate_scale
    try:
        cfg = config.with_overrides([_assignment(k, v) for k, v in overrides])
        row.update(flatten_summary(simulate(cfg, trace, seed=seed, rate_scale=rate_scale).summary))
        row["error"] = ""
    except Exception as e:  # one bad point must not lose the others
        row["error"] = f"{type(e).__name__}: {e}"
    return row


def _progress(done, total, started, stream):
    width = 30
    filled = int(width * done / total)
    elapsed = time.monotonic() - started
    stream.write(f"\rsweep [{'#' * filled}{'.' * (width - filled)}] {done}/{total} runs, {elapsed:.1f} s")
    if done == total:
        stream.write("\n")
    stream.flush()


def sweep(config, trace, grid=None, rate_scales=(1.0,), seed=1, processes=None, progress=None):
    """Simulates every combination of `grid` ({config key: [values]}) at every rate scale, in
    `processes` forked processes (default: the CPU count). Returns one row per run: the override
    values, rate_scale, the flattened summary metrics (latency_p99_ms, goodput_rps, ...) and an
    `error` column (empty when the run succeeded). A progress bar is drawn on stderr when
    `progress` is True, or by default (None) when stderr is a terminal, as the command line does."""
    if progress is None:
        progress = sys.stderr.isatty()
    grid = dict(grid or {})
    keys = list(grid)
    combos = [list(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]
    points = [(combo, float(scale)) for combo in combos for scale in rate_scales]
    if not points:
        return pd.DataFrame()
    _shared.update(config=config, trace=trace, seed=seed)
    rows = [None] * len(points)
    started = time.monotonic()
    context = multiprocessing.get_context("fork")
    processes = max(1, min(processes or multiprocessing.cpu_count(), len(points)))
    try:
        with context.Pool(processes) as pool:
            for done, (index, row) in enumerate(pool.imap_unordered(_indexed_point, enumerate(points)), 1):
                rows[index] = row
                if progress:
                    _progress(done, len(points), started, sys.stderr)
    finally:
        _shared.clear()
    return pd.DataFrame(rows)


def _indexed_point(item):
    index, point = item
    return index, _run_point(point)
