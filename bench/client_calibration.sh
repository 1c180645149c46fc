#!/usr/bin/env bash
# Calibrating the simulator from client-side per-request measurements only (no step log): what a
# user has for an engine whose steps cannot be logged. One real run of configs/cpu_tiny.json serves
# a calibration workload (synthetic, its own seed, moderate load); its per-request results are
# written as 'vllm bench serve --save-result --save-detailed' writes them (start times, input and
# output lengths, TTFTs, ITLs, latencies) and fitted with `twinfer calibrate --client-log`, starting
# from the config's roofline of the CPU device profile, and again from a `twinfer profile` fit. The
# first model then runs bench/fidelity.sh (light and moderate loads, real runs) on the four traces of
# the fidelity benchmark, none of which it saw; bench/resimulate_fidelity.py then compares the three
# models (client fit from the roofline, the profile, client fit from the profile) on those same real
# runs.
# usage: bench/client_calibration.sh OUT_DIR [REPEATS] [REQUESTS]
set -euo pipefail
out=${1:?usage: bench/client_calibration.sh OUT_DIR [REPEATS] [REQUESTS]}
repeats=${2:-2}
requests=${3:-100}
here=$(cd "$(dirname "$0")/.." && pwd)
twinfer=${TWINFER:-$here/build/bin/twinfer}
config=$here/configs/cpu_tiny.json
mkdir -p "$out"

cat > "$out/calib_spec.json" <<JSON
{"requests": 200, "rate_rps": 5, "arrival": "poisson",
 "input": {"kind": "lognormal", "mean": 700, "sigma": 1.1, "min": 8, "max": 3000},
 "output": {"kind": "lognormal", "mean": 100, "sigma": 1.1, "min": 1, "max": 1000}}
JSON
"$twinfer" trace gen --spec "$out/calib_spec.json" --seed 21 --out "$out/calib.csv" > /dev/null
start=$(date +%s)
"$twinfer" run --config "$config" --trace "$out/calib.csv" --out "$out/calib_run" > /dev/null
echo "calibration run: $(( $(date +%s) - start )) s"

# The run's requests as a client saw them, in vLLM's result format (seconds; a client clock whose
# origin is not the run's).
/usr/bin/python3 - "$out/calib_run/requests.csv" "$out/calib_vllm.json" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
res = {k: [] for k in ("input_lens", "output_lens", "ttfts", "itls", "latencies", "start_times", "errors")}
for r in rows:
    ok = r["outcome"] == "completed"
    a, f, e, n = int(r["arrival_us"]), int(r["first_token_us"]), int(r["end_us"]), int(r["output_tokens"])
    res["input_lens"].append(int(r["input_tokens"]))
    res["output_lens"].append(n if ok else 0)
    res["ttfts"].append((f - a) / 1e6 if ok else 0.0)
    res["itls"].append([(e - f) / 1e6 / (n - 1)] * (n - 1) if ok and n > 1 else [])
    res["latencies"].append((e - a) / 1e6 if ok else 0.0)
    res["start_times"].append(86400.0 + a / 1e6)
    res["errors"].append("" if ok else r["reason"] or r["outcome"])
res["completed"] = sum(1 for e in res["errors"] if not e)
json.dump(res, open(sys.argv[2], "w"))
PY

start=$(date +%s)
"$twinfer" calibrate --config "$config" --client-log "$out/calib_vllm.json" --out "$out/client_cost.json"
echo "calibrate: $(( $(date +%s) - start )) s"

start=$(date +%s)
"$twinfer" profile --config "$config" --out "$out/profile_cost.json" > /dev/null
"$twinfer" calibrate --config "$config" --client-log "$out/calib_vllm.json" --cost "$out/profile_cost.json" \
  --out "$out/client_from_profile.json"
echo "profile and calibrate from it: $(( $(date +%s) - start )) s"

COST=$out/client_cost.json LEVELS=1,2 bash "$here/bench/fidelity.sh" "$out/fidelity" "$repeats" "$requests"
/usr/bin/python3 "$here/bench/resimulate_fidelity.py" "$out/fidelity" "$out/fidelity/traces" "$config" \
  client/roofline="$out/client_cost.json" profile="$out/profile_cost.json" \
  client/profile="$out/client_from_profile.json"
