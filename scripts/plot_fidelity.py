#!/usr/bin/python3
"""Draws the CDFs of a `twinfer fidelity` output folder: one PNG per router and load level,
latency, TTFT and TPOT of the real runs (mean quantiles) against the simulation.

usage: /usr/bin/python3 scripts/plot_fidelity.py DIR
writes DIR/<router>/<load>/cdf.png beside each cdf.csv and prints their paths.
"""
import csv
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABELS = {"latency_ms": "latency (ms)", "ttft_ms": "TTFT (ms)", "tpot_ms": "TPOT (ms)"}


def plot(cdf_csv: pathlib.Path) -> pathlib.Path:
    series = {}
    with cdf_csv.open() as f:
        for row in csv.DictReader(f):
            s = series.setdefault(row["metric"], {"q": [], "real": [], "sim": []})
            s["q"].append(float(row["quantile"]) / 100)
            s["real"].append(float(row["real"]))
            s["sim"].append(float(row["sim"]))
    fig, axes = plt.subplots(1, len(LABELS), figsize=(13, 3.6))
    for ax, (metric, label) in zip(axes, LABELS.items()):
        s = series.get(metric)
        if not s:
            ax.set_visible(False)
            continue
        ax.plot(s["real"], s["q"], label="real (mean of runs)")
        ax.plot(s["sim"], s["q"], label="simulated", linestyle="--")
        ax.set_xlabel(label)
        ax.set_ylabel("fraction of requests")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    case = cdf_csv.parent
    fig.suptitle(f"{case.parent.name}, load {case.name}")
    fig.tight_layout()
    out = case / "cdf.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = pathlib.Path(sys.argv[1])
    files = sorted(root.glob("*/*/cdf.csv"))
    if not files:
        print(f"{root}: no <router>/<load>/cdf.csv (is it a 'twinfer fidelity' output folder?)", file=sys.stderr)
        return 1
    for f in files:
        print(plot(f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
