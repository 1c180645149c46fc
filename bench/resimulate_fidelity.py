"""Re-simulates the real runs that `twinfer fidelity` (or bench/fidelity.sh) saved with other cost
files, and compares each with the real runs' mean request by request: a cheap way to compare cost
models on the same real measurements.

usage: /usr/bin/python3 bench/resimulate_fidelity.py FIDELITY_DIR TRACES_DIR CONFIG NAME=COST.json ...
FIDELITY_DIR holds <trace>/<router>/x<scale>/real<i>/requests.csv; TRACES_DIR <trace>.csv. Prints
per case and cost file the simulation's error of the P50 and P99 of latency, TTFT and TPOT, and the
per-request mean absolute percentage error, in %."""
import json
import os
import subprocess
import sys

import pandas as pd

here = os.path.dirname(os.path.abspath(__file__))
twinfer = os.environ.get("TWINFER", os.path.join(here, "..", "build", "bin", "twinfer"))


def metrics(path):
    r = pd.read_csv(path)
    r = r[r.outcome == "completed"].set_index("id")
    tpot = ((r.end_us - r.first_token_us) / 1e3 / (r.output_tokens - 1)).where(r.output_tokens > 1)
    return pd.DataFrame({"latency": (r.end_us - r.arrival_us) / 1e3, "ttft": (r.first_token_us - r.arrival_us) / 1e3,
                         "tpot": tpot})


def main(fidelity, traces, config, costs):
    rows = []
    for trace in sorted(os.listdir(fidelity)):
        if not os.path.isfile(os.path.join(traces, trace + ".csv")):
            continue
        for router in sorted(os.listdir(os.path.join(fidelity, trace))):
            base = os.path.join(fidelity, trace, router)
            if not os.path.isdir(base):
                continue
            for scale in sorted(os.listdir(base), key=lambda s: float(s[1:])):
                case = os.path.join(base, scale)
                runs = [metrics(os.path.join(case, d, "requests.csv")) for d in sorted(os.listdir(case))
                        if d.startswith("real")]
                real = sum(runs) / len(runs)
                for name, cost in costs:
                    dispatch = json.load(open(cost)).get("meta", {}).get("engine", {}).get("dispatch_us", 0)
                    out = os.path.join(case, "resim-" + name.replace("/", "_"))
                    subprocess.run([twinfer, "sim", "--config", config, "--trace", os.path.join(traces, trace + ".csv"),
                                    "--rate-scale", scale[1:], "--out", out,
                                    "--set", "policies.cost_model.name=calibrated",
                                    "--set", f"policies.cost_model.path={os.path.abspath(cost)}",
                                    "--set", f"sim.dispatch_us={dispatch}", "--set", "sim.network=none",
                                    "--set", "sim.timeline=false"], check=True, capture_output=True)
                    sim = metrics(os.path.join(out, "requests.csv"))
                    row = {"trace": trace, "load": scale, "cost": name}
                    for m in ("latency", "ttft", "tpot"):
                        a = real[m].dropna()
                        b = sim[m].reindex(a.index)
                        row[f"{m} p50"] = round((b.median() / a.median() - 1) * 100, 1)
                        row[f"{m} p99"] = round((b.quantile(0.99) / a.quantile(0.99) - 1) * 100, 1)
                        row[f"{m} mape"] = round(((b - a).abs() / a).mean() * 100, 1)
                    rows.append(row)
    pd.set_option("display.width", 250)
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3], [tuple(a.split("=", 1)) for a in sys.argv[4:]])
