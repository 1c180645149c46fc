#!/usr/bin/env bash
# The fidelity benchmark: how well the simulator predicts the real CPU runtime on traces whose steps
# were not used to fit its cost model. Profiles once (probe workloads through the worker engine),
# then runs `twinfer fidelity` with that cost model on four traces, each at several load levels
# with repeated real runs:
#   conv, code   slices of the Azure LLM inference traces 2023 (../shared/traces), lengths clipped
#                to the tiny model's context (prompts <= 3,000 tokens, outputs <= 1,000)
#   poisson      synthetic, Poisson arrivals, lognormal lengths
#   bursty       synthetic, gamma arrivals with coefficient of variation 3
# usage: bench/fidelity.sh OUT_DIR [REPEATS] [REQUESTS]
# Prints one table per trace (twinfer fidelity's) and writes OUT_DIR/summary.csv.
# Environment: COST=FILE uses that cost file instead of profiling; LEVELS=1,2 runs only those of
# the three load levels (1 light, 2 moderate, 3 near saturation; default all).
set -euo pipefail
out=${1:?usage: bench/fidelity.sh OUT_DIR [REPEATS] [REQUESTS]}
repeats=${2:-3}
requests=${3:-100}
here=$(cd "$(dirname "$0")/.." && pwd)
twinfer=${TWINFER:-$here/build/bin/twinfer}
shared=${TWINFER_SHARED_TRACES_DIR:-$here/../shared/traces}
config=$here/configs/cpu_tiny.json
mkdir -p "$out/traces"

/usr/bin/python3 - "$shared" "$out/traces" "$requests" <<'PY'
import csv, sys
shared, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name in ("conv", "code"):
    rows = list(csv.reader(open(f"{shared}/azure_llm_2023/AzureLLMInferenceTrace_{name}.csv")))[1:]
    with open(f"{dst}/{name}.csv", "w") as f:
        f.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for t, p, o in rows[1000:1000 + n]:  # from the 1,000th request: not the head the tests use
            f.write(f"{t},{max(1, min(int(p), 3000))},{max(1, min(int(o), 1000))}\n")
PY
for kind in poisson bursty; do
  cv=1; [ $kind = bursty ] && cv=3
  cat > "$out/traces/$kind.json" <<JSON
{"requests": $requests, "rate_rps": 4, "arrival": "gamma", "cv": $cv,
 "input": {"kind": "lognormal", "mean": 600, "sigma": 1.0, "min": 8, "max": 3000},
 "output": {"kind": "lognormal", "mean": 120, "sigma": 1.0, "min": 1, "max": 1000}}
JSON
  "$twinfer" trace gen --spec "$out/traces/$kind.json" --seed 7 --out "$out/traces/$kind.csv" > /dev/null
done

if [ -n "${COST:-}" ]; then
  cp "$COST" "$out/cost.json"
else
  start=$(date +%s)
  "$twinfer" profile --config "$config" --out "$out/cost.json" --keep-steps "$out/probe_steps"
  echo "profile: $(( $(date +%s) - start )) s"
fi

# Load levels per trace (rate scales): light, moderate, near saturation of the two CPU workers.
declare -A loads=([conv]="0.25,0.5,0.85" [code]="1,2,3.4" [poisson]="0.6,1.2,2" [bursty]="0.6,1.2,2")
levels=${LEVELS:-1,2,3}
for trace in conv code poisson bursty; do
  start=$(date +%s)
  IFS=, read -ra all <<< "${loads[$trace]}"
  picked=()
  for l in ${levels//,/ }; do picked+=("${all[$((l - 1))]}"); done
  scales=$(IFS=,; echo "${picked[*]}")
  "$twinfer" fidelity --config "$config" --trace "$out/traces/$trace.csv" --out "$out/$trace" \
    --cost "$out/cost.json" --rate-scales "$scales" --repeats "$repeats"
  echo "$trace: $(( $(date +%s) - start )) s"
done

/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
rows = ["trace,load,utilization,metric,stat,real,real_spread,sim,error,per_request_mape,real_per_request_mape"]
for trace in ("conv", "code", "poisson", "bursty"):
    f = json.load(open(f"{out}/{trace}/fidelity.json"))
    for router, loads in f["routers"].items():
        for load, r in loads.items():
            util = sum(r["real_utilization"]) / len(r["real_utilization"])
            for metric in ("latency_ms", "ttft_ms", "tpot_ms"):
                m = r[metric]
                for stat in ("p50", "p90", "p99", "mean"):
                    s = m[stat]
                    rows.append(",".join(str(x) for x in (trace, load, round(util, 3), metric, stat, s["real"],
                                s["real_spread"], s["sim"], s["error"], m["per_request_mape"],
                                m.get("real_per_request_mape"))))
open(f"{out}/summary.csv", "w").write("\n".join(rows) + "\n")
print(f"wrote {out}/summary.csv")
PY
