#!/usr/bin/env bash
# The simulator's scaling benchmark: requests x GPUs x network model, as a user runs it (whole
# `twinfer sim` processes: wall and peak RSS from /usr/bin/time), beside the in-process figures the
# summary reports (the simulation's own wall time and events). Synthetic Poisson traces (lognormal
# prompts of mean 800 and outputs of mean 200 tokens, seed 1), Llama-3-8B on H100s
# (configs/gpu64.json with cluster.hosts.0.count = GPUs / 8), continuous batching, round robin, no
# timeline. Also Vidur's reference workload (configs/vidur_llama2_70b_a100_tp2.json on the Azure
# conversation trace).
# usage: bench/scaling.sh OUT_DIR [ROWS]
#   ROWS: "all" (default), "quick" (no million-request rows) or "scale" (the per-GPU-load rows).
# Environment: BASE=/path/to/other/twinfer runs every row with that binary too, interleaved, for a
# side-by-side comparison (same machine, same moment).
set -euo pipefail
out=${1:?usage: bench/scaling.sh OUT_DIR [ROWS]}
rows=${2:-all}
here=$(cd "$(dirname "$0")/.." && pwd)
twinfer=${TWINFER:-$here/build/bin/twinfer}
shared=${TWINFER_SHARED_TRACES_DIR:-$here/../shared/traces}
mkdir -p "$out"

for n in 200000 1000000; do
  [ -f "$out/poisson$n.csv" ] && continue
  cat > "$out/spec$n.json" <<JSON
{"requests": $n, "rate_rps": 3200, "arrival": "poisson",
 "input": {"kind": "lognormal", "mean": 800, "sigma": 1.0, "max": 8000},
 "output": {"kind": "lognormal", "mean": 200, "sigma": 1.0, "max": 4000}}
JSON
  "$twinfer" trace gen --spec "$out/spec$n.json" --seed 1 --out "$out/poisson$n.csv" > /dev/null
done

# One row: label, binary, trace, rate scale, GPUs, network, extra --set...
run() {
  local label=$1 bin=$2 trace=$3 scale=$4 gpus=$5 net=$6
  shift 6
  local log="$out/run.$$.json" tim="$out/time.$$.txt"
  /usr/bin/time -f "%e %M" -o "$tim" "$bin" sim --config "$here/configs/gpu64.json" --trace "$trace" \
    --rate-scale "$scale" --set cluster.hosts.0.count=$((gpus / 8)) --set sim.network="$net" \
    --set sim.timeline=false "$@" --json > "$log"
  read -r wall rss < "$tim"
  /usr/bin/python3 - "$log" "$label" "$gpus" "$net" "$wall" "$rss" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
label, gpus, net, wall, rss = sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), int(sys.argv[6])
n = sum(s["requests"][k] for k in ("completed", "rejected", "dropped", "timed_out"))
sim = s["sim"]
print(f"| {label} | {n:,} | {gpus} | {n / sim['simulated_s']:,.0f} /s | {net} | {sim['simulated_s']:.0f} s | "
      f"{wall:.2f} s | {rss / 1024:.0f} MB | {sim['wall_s']:.2f} s | {sim['events'] / 1e6:.2f} M | {n / wall:,.0f} |")
PY
  rm -f "$log" "$tim"
}

echo "| binary | requests | GPUs | requests / simulated s | network | simulated | wall (process) | peak RSS | wall (simulation) | events | requests / wall s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
bins=("new=$twinfer")
[ -n "${BASE:-}" ] && bins+=("base=$BASE")
row() {
  for b in "${bins[@]}"; do run "${b%%=*}" "${b#*=}" "$@"; done
}
t200=$out/poisson200000.csv
t100=$out/poisson100000.csv
[ -f "$t100" ] || head -n 100001 "$t200" > "$t100"
t1m=$out/poisson1000000.csv
case $rows in
  all|quick)
    row "$t100" 0.125 64 flow
    row "$t100" 0.125 64 none
    row "$t200" 1 64 none
    row "$t200" 1 512 none
    ;;&
  all)
    row "$t1m" 1 512 none
    row "$t1m" 1 512 flow
    ;;&
  all|quick|scale)
    # The same load per GPU (6.25 requests/s per GPU) at 64, 512 and 1,024 GPUs.
    row "$t200" 0.125 64 none
    row "$t200" 1 512 none
    row "$t200" 2 1024 none
    ;;
esac

if [ -f "$shared/azure_llm_2023/AzureLLMInferenceTrace_conv.csv" ]; then
  echo
  echo "Vidur's reference workload, whole process (median of 5):"
  for b in "${bins[@]}"; do
    walls=()
    for i in 1 2 3 4 5; do
      /usr/bin/time -f "%e %M" -o "$out/vidur.txt" "${b#*=}" sim --config "$here/configs/vidur_llama2_70b_a100_tp2.json" \
        --trace "$shared/azure_llm_2023/AzureLLMInferenceTrace_conv.csv" --out "$out/vidur" > /dev/null
      walls+=("$(cat "$out/vidur.txt")")
    done
    printf '%s\n' "${walls[@]}" | sort -n | sed -n 3p | awk -v b="${b%%=*}" '{printf "%s: %.2f s wall, %.0f MB peak RSS\n", b, $1, $2 / 1024}'
  done
fi
