#!/usr/bin/env bash
# Feeds the command line hostile files and arguments (huge and wrapping numbers, deep nesting,
# directories and devices as files, long lines, zero and negative tokens, overlapping or huge fault
# files) and checks that each ends with "error: ..." and exit code 1 (2 for an unknown command; or
# runs, where the input is valid), within 120 s, never with a crash, an abort, a hang or silence.
#   scripts/hostile_inputs.sh [path/to/twinfer]     (default build/bin/twinfer)
# Prints one line per case and a count; exits non-zero when any case crashed, hung or said nothing.
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
twinfer="${1:-$root/build/bin/twinfer}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
config="$root/configs/cpu_tiny.json"
sim_config="$root/configs/h100x8.json"
trace="$root/traces/data/cpu_trace.csv"

# Files ----------------------------------------------------------------------------------------
mk() { printf '%b' "$2" >"$work/$1"; }
deep() { local n=$1; printf '%*s' "$n" '' | tr ' ' '['; printf '%*s' "$n" '' | tr ' ' ']'; }
deep 100000 >"$work/deep.json"
mk huge_number.json '{"cluster": {"hosts": [{"name": "h", "gpus": 1e400}]}}'
mk not_json.json 'cluster: yes\n'
mk empty.json ''
mk truncated.json '{"cluster": {"models": '
python3_bin=/usr/bin/python3
"$python3_bin" - "$work" "$config" <<'EOF'
import json, sys
work, config = sys.argv[1], sys.argv[2]
base = json.load(open(config))
def variant(name, path, value):
    c = json.loads(json.dumps(base))
    node = c
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    open(f"{work}/{name}", "w").write(json.dumps(c))
variant("gpus_wraps.json", ["cluster", "hosts", 0, "gpus"], 2**32 + 2)
variant("gpus_1e12.json", ["cluster", "hosts", 0, "gpus"], 1e12)
variant("gpus_negative.json", ["cluster", "hosts", 0, "gpus"], -1)
variant("count_wraps.json", ["cluster", "hosts", 0, "instances", 0, "count"], 2**32 + 2)
variant("max_num_seqs_wraps.json", ["policies", "batcher", "max_num_seqs"], 2**32 + 4)
variant("kv_blocks_float.json", ["policies", "batcher", "kv_blocks"], 10.5)
variant("model_string.json", ["cluster", "models", "tiny-llm", "layers"], "four")
variant("unknown_key.json", ["policies", "router", "weigth"], 1)
variant("max_context_zero.json", ["cluster", "models", "tiny-llm", "max_context"], 0)
variant("unknown_model.json", ["cluster", "hosts", 0, "instances", 0, "model"], "no-such-model")
with open(f"{work}/long_line.csv", "w") as f:
    f.write("arrival_s,input_tokens,output_tokens,model\n0,1,2," + "x" * 2_000_000 + "\n")
with open(f"{work}/many_faults.json", "w") as f:
    json.dump({"faults": [{"at_s": i, "type": "slowdown", "worker": 0, "factor": 2, "duration_s": 1}
                          for i in range(20000)]}, f)
with open(f"{work}/faults_overlap_far.json", "w") as f:
    json.dump({"faults": [{"at_s": i, "type": "slowdown", "worker": 0, "factor": 2, "duration_s": 1}
                          for i in range(20000)] + [{"at_s": 100.5, "type": "slowdown", "worker": 0, "factor": 2}]}, f)
EOF
mk zero_tokens.csv 'arrival_s,input_tokens,output_tokens\n0,0,4\n0.1,16,4\n'
mk negative_tokens.csv 'arrival_s,input_tokens,output_tokens\n0,-5,4\n'
mk huge_tokens.csv 'arrival_s,input_tokens,output_tokens\n0,99999999999999999999,4\n'
mk tokens_wrap.csv 'arrival_s,input_tokens,output_tokens\n0,4294967298,4\n'
mk nan_time.csv 'arrival_s,input_tokens,output_tokens\nnan,16,4\n'
mk inf_time.csv 'arrival_s,input_tokens,output_tokens\ninf,16,4\n'
mk huge_time.csv 'arrival_s,input_tokens,output_tokens\n1e300,16,4\n'
mk past_context.csv 'arrival_s,input_tokens,output_tokens\n0,5000,4\n0,16,16000\n0.1,16,4\n'
mk header_only.csv 'arrival_s,input_tokens,output_tokens\n'
mk binary.csv '\x00\x01\x02\xff\xfe\n\x00'
mk factor_huge.json '{"faults": [{"at_s": 1, "type": "slowdown", "worker": 0, "factor": 1e400}]}'
mk factor_big.json '{"faults": [{"at_s": 1, "type": "slowdown", "worker": 0, "factor": 1e7}]}'
mk fault_worker_wraps.json '{"faults": [{"at_s": 1, "type": "crash", "worker": 4294967296}]}'
mk fault_time_huge.json '{"faults": [{"at_s": 1e300, "type": "crash", "worker": 0}]}'
mk fault_overlap.json '{"faults": [{"at_s": 1, "type": "crash", "worker": 0, "recover_after_s": 5}, {"at_s": 2, "type": "crash", "worker": 0}]}'
mk fault_unknown.json '{"faults": [{"at_s": 1, "type": "melt", "worker": 0}]}'
mkdir -p "$work/a_directory"

# Cases: expected outcome ("error" or "ok"), then the arguments --------------------------------
cases=()
add() { cases+=("$*"); }
for f in deep huge_number not_json empty truncated gpus_wraps gpus_1e12 gpus_negative count_wraps max_num_seqs_wraps \
         kv_blocks_float model_string unknown_key max_context_zero unknown_model; do
  add "error sim --config $work/$f.json --no-progress"
done
for f in /dev/zero /dev/urandom /dev/null "$work/a_directory" /nonexistent/config.json; do
  add "error sim --config $f --no-progress"
  add "error sim --config $sim_config --trace $f --no-progress"
  add "error sim --config $sim_config --faults $f --no-progress"
done
for f in negative_tokens huge_tokens tokens_wrap nan_time inf_time huge_time header_only binary; do
  add "error sim --config $sim_config --trace $work/$f.csv --no-progress"
done
for f in factor_huge factor_big fault_worker_wraps fault_time_huge fault_overlap fault_unknown faults_overlap_far; do
  add "error sim --config $sim_config --faults $work/$f.json --no-progress"
done
add "ok sim --config $sim_config --faults $work/many_faults.json --out $work/out_many --no-progress"
# A 2 MB model name is a request for a model no worker serves: rejected with its reason.
add "ok sim --config $sim_config --trace $work/long_line.csv --out $work/out_long --no-progress"
add "ok sim --config $sim_config --rate-scale 1e300 --out $work/out_scaled --no-progress"
for scale in 1e-300 0 -1 nan inf abc; do
  add "error sim --config $sim_config --rate-scale $scale --no-progress"
done
# Zero-token prompts and prompts past the context are rejected at admission; the run goes on.
add "ok sim --config $config --trace $work/zero_tokens.csv --out $work/out_zero_sim --no-progress"
add "ok run --config $config --trace $work/zero_tokens.csv --out $work/out_zero_run --no-progress"
add "ok run --config $config --trace $work/past_context.csv --out $work/out_ctx_run --no-progress"
add "error run --config $config --set cluster.hosts.0.gpus=4294967298 --no-progress"
add "error run --config $config --trace $work/zero_tokens.csv --set policies.batcher.max_num_seqs=1e12 --no-progress"
add "error serve --config $config --spawn-workers --listen 127.0.0.1:99999"
add "error serve --config $config --spawn-workers --token-file /dev/zero"
add "error serve --config $config --spawn-workers --tls-cert $work/a_directory --tls-key $work/a_directory"
add "error worker --config $config --id 4294967296"
add "error worker --config $config --id -1"
add "error replay --trace $trace --target nowhere"
add "error replay --trace $trace --target 127.0.0.1:1 --timeout-s 1e400"
add "error trace info --trace $work/a_directory"
add "error trace info --trace /dev/urandom"
add "error sim --config"
add "error sim --bogus"
add "usage nonsense-command"

crashed=0
silent=0
wrong=0
n=0
for c in "${cases[@]}"; do
  expect=${c%% *}
  args=${c#* }
  n=$((n + 1))
  # shellcheck disable=SC2086
  out=$(timeout 120 "$twinfer" $args 2>&1 </dev/null)
  rc=$?
  first=$(printf '%s\n' "$out" | grep -m1 -E 'error: |unknown command' | cut -c1-150)
  verdict=ok
  if [ "$expect" = usage ] && [ $rc -eq 2 ] && [ -n "$first" ]; then
    verdict=ok
  elif [ $rc -ge 124 ] || [ $rc -gt 1 ]; then
    verdict="CRASH (exit $rc)"
    crashed=$((crashed + 1))
  elif [ "$expect" = error ] && { [ $rc -ne 1 ] || ! printf '%s' "$out" | grep -q 'error: '; }; then
    verdict="NO ERROR (exit $rc)"
    silent=$((silent + 1))
  elif [ "$expect" = ok ] && [ $rc -ne 0 ]; then
    verdict="FAILED (exit $rc)"
    wrong=$((wrong + 1))
  fi
  printf '%-18s %s\n    %s\n' "$verdict" "${args//$work\//}" "${first:-(no message)}"
done
echo "hostile inputs: $n cases, $crashed crashed or hung, $silent without an error, $wrong valid ones failed"
[ $crashed -eq 0 ] && [ $silent -eq 0 ] && [ $wrong -eq 0 ]
