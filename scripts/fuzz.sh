#!/usr/bin/env bash
# Fuzzes the input readers with libFuzzer (AddressSanitizer + UBSan), one target after another.
#   scripts/fuzz.sh [seconds per target, default 180] [target ...]
# Builds build-fuzz/ with clang and TWINFER_FUZZ=ON, runs each target on a scratch copy of its seed
# corpus (tests/fuzz/corpus/<target>/, never written to) with its dictionary, and prints per
# target the executions and the crashes (crash-*, timeout-*, leak-*, oom-* files in
# build-fuzz/fuzz-out/<target>/artifacts/). A hang longer than 5 s is a finding. One process per
# target at a time (libFuzzer's default; -jobs would fork workers that log to files instead). Exits non-zero
# when any target found something. To keep new coverage, merge it into the repository corpus:
#   build-fuzz/bin/<target>_fuzz -merge=1 tests/fuzz/corpus/<target> build-fuzz/fuzz-out/<target>/corpus
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-180}"
shift || true
all_targets=(trace_native_csv trace_native_jsonl trace_azure trace_burstgpt trace_mooncake run_config fault_scenario wire
  http_request grpc_server)
targets=("${@:-${all_targets[@]}}")
build="$root/build-fuzz"
jobs="${FUZZ_BUILD_JOBS:-2}"

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_COMPILER=clang++ \
  -DTWINFER_FUZZ=ON -DTWINFER_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target "${targets[@]/%/_fuzz}"

summary=()
found=0
for t in "${targets[@]}"; do
  out="$build/fuzz-out/$t"
  rm -rf "$out"
  mkdir -p "$out/corpus" "$out/artifacts"
  cp -r "$root/tests/fuzz/corpus/$t/." "$out/corpus/"
  dict=()
  [ -f "$root/tests/fuzz/$t.dict" ] && dict=(-dict="$root/tests/fuzz/$t.dict")
  echo "== $t: ${seconds}s"
  set +e
  "$build/bin/${t}_fuzz" "$out/corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    -max_len=1048576 -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
    >"$out/log.txt" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$out/log.txt" | grep -o '[0-9]*$' | tail -1)
  crashes=$(find "$out/artifacts" -type f | wc -l)
  [ "$crashes" -gt 0 ] || [ "$rc" -ne 0 ] && found=1
  line="$t: seconds $seconds, executions ${execs:-?}, crashes $crashes (exit $rc)"
  echo "$line"
  [ "$crashes" -gt 0 ] && find "$out/artifacts" -type f -printf '  %p\n'
  summary+=("$line")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$found"
