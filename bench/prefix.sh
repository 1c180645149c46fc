#!/usr/bin/env bash
# KV-cache reuse figures: prefix caching on and off, hit rate against cache size, cache-aware
# routers on 8 and 64 GPUs (and the router's view 0, 50 and 500 ms stale), and the simulator's speed
# with caching on and off, side by side. Multi-turn synthetic traces (traces/README.md, "prefix"):
# tenants' 1,000-token system prompts, conversations of 2 to 12 turns re-sending their history,
# 300 new tokens a turn (lognormal), 150 out; Llama-3-8B on H100s (configs/gpu64.json with
# cluster.hosts.0.count = GPUs / 8), continuous batching with 16-token blocks.
# usage: bench/prefix.sh OUT_DIR [REQUESTS [speed|host|scorers]]   (REQUESTS per routing trace,
#   default 100000; "speed" adds the one-million-request speed rows; "host" runs only the host-tier
#   rows; "scorers" only the estimated-or-reported prefix affinity rows, in-flight tracking included)
set -euo pipefail
out=${1:?usage: bench/prefix.sh OUT_DIR [REQUESTS]}
requests=${2:-100000}
here=$(cd "$(dirname "$0")/.." && pwd)
twinfer=${TWINFER:-$here/build/bin/twinfer}
mkdir -p "$out"

# gen NAME SEED: the trace of the spec on stdin (unless it was made already).
gen() {
  local name=$1 seed=$2
  if [ -f "$out/$name.csv" ]; then
    cat > /dev/null
    return
  fi
  cat > "$out/$name.json"
  "$twinfer" trace gen --spec "$out/$name.json" --seed "$seed" --out "$out/$name.csv" > /dev/null
}

# trace NAME REQUESTS RATE CONVERSATIONS SEED
trace() {
  local name=$1 n=$2 rate=$3 conversations=$4 seed=$5
  gen "$name" "$seed" <<JSON
{"requests": $n, "rate_rps": $rate, "arrival": "poisson",
 "input": {"kind": "lognormal", "mean": 300, "sigma": 1.0, "max": 4000},
 "output": {"kind": "lognormal", "mean": 150, "sigma": 1.0, "max": 2000},
 "prefix": {"block_tokens": 64, "tenants": 16, "system_tokens": {"kind": "constant", "mean": 1000},
            "conversations": $conversations, "turns": {"kind": "uniform", "min": 2, "max": 12},
            "max_context": 8000}}
JSON
}

# agent NAME REQUESTS RATE CONVERSATIONS SEED: agent loops (30 turns of ~300 tokens of tool output
# and ~60 out, a 2,000-token system prompt of one of 4 tenants, contexts up to 16,000 tokens).
agent() {
  local name=$1 n=$2 rate=$3 conversations=$4 seed=$5
  gen "$name" "$seed" <<JSON
{"requests": $n, "rate_rps": $rate, "arrival": "poisson",
 "input": {"kind": "lognormal", "mean": 300, "sigma": 0.5, "max": 2000},
 "output": {"kind": "lognormal", "mean": 60, "sigma": 0.5, "max": 400},
 "prefix": {"block_tokens": 64, "tenants": 4, "system_tokens": {"kind": "constant", "mean": 2000},
            "conversations": $conversations, "turns": {"kind": "constant", "mean": 30},
            "max_context": 16000}}
JSON
}

# row LABEL TRACE GPUS --set...: one `twinfer sim`, one table row.
row() {
  local label=$1 trace=$2 gpus=$3
  shift 3
  local log="$out/run.$$.json" tim="$out/time.$$.txt"
  /usr/bin/time -f "%e %M" -o "$tim" "$twinfer" sim --config "$here/configs/gpu64.json" --trace "$out/$trace.csv" \
    --set cluster.hosts.0.count=$((gpus / 8)) --set sim.network=none --set sim.timeline=false "$@" --json > "$log"
  read -r wall rss < "$tim"
  /usr/bin/python3 - "$log" "$label" "$gpus" "$wall" "$rss" <<'PY'
import json, statistics, sys
s = json.load(open(sys.argv[1]))
label, gpus, wall, rss = sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
n = s["requests"]["total"]
per_worker = [w["completed"] for w in s["workers"]]
mean = statistics.mean(per_worker)
cv = statistics.pstdev(per_worker) / mean if mean else 0.0
pc = s["prefix_cache"]
host = pc.get("host_cached_tokens", 0)
from_host = f" ({100 * host / pc['prompt_tokens']:.1f}% from host)" if host else ""
print(f"| {label} | {gpus} | {s['ttft_ms']['p50']:,.0f} | {s['ttft_ms']['p99']:,.0f} | {s['throughput_rps']:.1f} | "
      f"{100 * pc['hit_rate']:.1f}%{from_host} | {max(per_worker) / mean if mean else 0:.2f} | {cv:.2f} | "
      f"{n / wall:,.0f} | {rss / 1024:.0f} MB |")
PY
  rm -f "$log" "$tim"
}

header() {
  echo
  echo "$1"
  echo
  echo "| run | GPUs | TTFT P50 ms | TTFT P99 ms | throughput req/s | prefix hit rate | busiest / mean worker | CV of completions | requests / wall s | peak RSS |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
}

trace mt8 "$requests" 60 400 1
trace mt64 "$requests" 480 3000 2
trace reuse "$((requests / 5))" 60 400 3
agent agents "$((requests / 5))" 40 300 5

cache="--set policies.batcher.prefix_caching=true"
echo "# bench/prefix.sh ($requests requests per routing trace) on $(nproc) cores"
"$twinfer" trace info --trace "$out/mt8.csv" | tail -1
"$twinfer" trace info --trace "$out/mt64.csv" | tail -1
"$twinfer" trace info --trace "$out/reuse.csv" | tail -1
"$twinfer" trace info --trace "$out/agents.csv" | tail -1

# A second tier in host memory behind caches that evict (vLLM's CPU offloading): 2 MB blocks, so
# 16,000 host blocks are 32 GB of host memory per GPU; loads over PCIe Gen5 (64 GB/s).
if [ "${3:-}" != scorers ]; then
header "A host-memory tier (8 GPUs, cache_aware; KV blocks per GPU on the device, and in host memory)"
for blocks in 2000 4000; do
  for host in 0 16000 64000; do
    row "$blocks device, $host host blocks" reuse 8 --set policies.router.name=cache_aware $cache \
      --set policies.batcher.kv_blocks=$blocks --set policies.batcher.host_kv_blocks=$host
  done
done
for host in 0 16000 64000; do
  row "agent loops: 2000 device, $host host blocks" agents 8 --set policies.router.name=cache_aware $cache \
    --set policies.batcher.kv_blocks=2000 --set policies.batcher.host_kv_blocks=$host
done
row "4000 device, 16000 host blocks, network flows" reuse 8 --set policies.router.name=cache_aware $cache \
  --set policies.batcher.kv_blocks=4000 --set policies.batcher.host_kv_blocks=16000 --set sim.network=flow

fi
[ "${3:-}" = host ] && exit 0

if [ "${3:-}" != scorers ]; then
header "Prefix caching on and off (8 GPUs, round robin), and the hit rate against the cache size (KV blocks per GPU)"
row "caching off" mt8 8 --set policies.router.name=round_robin
row "caching on" mt8 8 --set policies.router.name=round_robin $cache
for blocks in 2000 4000 8000 16000; do
  row "caching on, $blocks blocks" reuse 8 --set policies.router.name=cache_aware $cache --set policies.batcher.kv_blocks=$blocks
done
fi

# Where the router's estimate and the workers' own reports part: caches that evict. The reports
# lag what was sent (a turn whose history still waits is not reported yet): in-flight tracking
# counts the blocks sent in the last in_flight_ms as held too.
scored() {  # scored SCORER [IN_FLIGHT_MS]: that scorer 3 + queue 2
  local extra=""
  [ -n "${2:-}" ] && extra=",\"in_flight_ms\":$2"
  echo "policies.router={\"name\":\"scored\",\"scorers\":[{\"name\":\"$1\",\"weight\":3$extra},{\"name\":\"queue\",\"weight\":2}]}"
}
header "Prefix affinity estimated or reported (8 GPUs, scorers prefix or kv_events 3 + queue 2, KV blocks per GPU)"
for blocks in 2000 4000; do
  row "prefix, $blocks blocks" reuse 8 $cache --set policies.batcher.kv_blocks=$blocks --set "$(scored prefix)"
  row "kv_events, $blocks blocks" reuse 8 $cache --set policies.batcher.kv_blocks=$blocks --set "$(scored kv_events)"
  for ms in 2000 30000; do
    row "kv_events, in flight $ms ms, $blocks blocks" reuse 8 $cache --set policies.batcher.kv_blocks=$blocks \
      --set "$(scored kv_events $ms)"
  done
done
for scorer in prefix kv_events "kv_events 2000" "kv_events 30000"; do
  label=$scorer
  [ "${scorer#* }" != "$scorer" ] && label="${scorer% *}, in flight ${scorer#* } ms"
  # shellcheck disable=SC2086
  row "agent loops: $label, 2000 blocks" agents 8 $cache --set policies.batcher.kv_blocks=2000 --set "$(scored $scorer)"
done

[ "${3:-}" = scorers ] && exit 0

for g in 8 64; do
  t=mt$g
  header "Routers, $g GPUs, caching on"
  row "round_robin" $t $g $cache --set policies.router.name=round_robin
  row "least_outstanding" $t $g $cache --set policies.router.name=least_outstanding
  row "scored: prefix only" $t $g $cache --set 'policies.router={"name":"scored","scorers":[{"name":"prefix","weight":1}]}'
  row "scored: llm-d default (prefix 3, queue 2)" $t $g $cache --set policies.router.name=scored
  row "scored: prefix 3, queue 2, kv 2" $t $g $cache \
    --set 'policies.router={"name":"scored","scorers":[{"name":"prefix","weight":3},{"name":"queue","weight":2},{"name":"kv","weight":2}]}'
  row "cache_aware (SGLang)" $t $g $cache --set policies.router.name=cache_aware
  row "kv_overlap (Dynamo)" $t $g $cache --set policies.router.name=kv_overlap
  row "scored: kv_events 3, queue 2 (llm-d precise)" $t $g $cache \
    --set 'policies.router={"name":"scored","scorers":[{"name":"kv_events","weight":3},{"name":"queue","weight":2}]}'
  row "scored: kv_events 3, queue 2, kv 2" $t $g $cache \
    --set 'policies.router={"name":"scored","scorers":[{"name":"kv_events","weight":3},{"name":"queue","weight":2},{"name":"kv","weight":2}]}'
  row "kv_overlap (Dynamo), KV events" $t $g $cache --set policies.router.name=kv_overlap \
    --set policies.router.use_kv_events=true
  for ms in 50 500; do
    row "scored: llm-d default, view ${ms} ms stale" $t $g $cache --set policies.router.name=scored \
      --set policies.router.refresh_ms=$ms
  done
done

# The simulator's speed with caching on and off on one million multi-turn requests, 64 GPUs,
# interleaved (bench/prefix.sh OUT_DIR REQUESTS speed).
if [ "${3:-}" = speed ]; then
  trace mt1m 1000000 480 3000 4
  header "One million multi-turn requests, 64 GPUs, round robin (speed)"
  for i in 1 2; do
    row "caching off ($i)" mt1m 64 --set policies.router.name=round_robin
    row "caching on ($i)" mt1m 64 --set policies.router.name=round_robin $cache
  done
fi
