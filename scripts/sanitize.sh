#!/usr/bin/env bash
# Builds and runs tests under sanitizers, each mode in its own build directory (Debug, -O1, line
# tables only: reports name file:line, and the build takes a third less time than with -g):
#   asan: AddressSanitizer + UndefinedBehaviorSanitizer (with LeakSanitizer) on the unit test
#         programs core_tests, policies_tests, traces_tests, serving_tests, sim_tests and
#         runtime_tests, and the CLI tests. Build dir build-asan/.
#   tsan: ThreadSanitizer on runtime_tests (worker engine, embedded runtime, gRPC in one process
#         and across processes). Build dir build-tsan/.
# A finding fails its test: the programs stop at the first report with a non-zero status.
# Usage: scripts/sanitize.sh asan|tsan   (TWINFER_JOBS sets the build's parallelism, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs="${TWINFER_JOBS:-2}"
supp="$root/tests/sanitizers"

case "${1:-}" in
  asan)
    sanitize=address,undefined
    targets=(core_tests policies_tests traces_tests serving_tests sim_tests runtime_tests twinfer trace_native_csv_fuzz trace_native_jsonl_fuzz
             trace_azure_fuzz trace_burstgpt_fuzz trace_mooncake_fuzz run_config_fuzz fault_scenario_fuzz wire_fuzz
             http_request_fuzz grpc_server_fuzz)
    select=()  # every test of the build: the four programs, the CLI, the fuzz corpora and the include check
    # Too slow instrumented (the Eigen kernels run about 10x slower); other tests cover their code:
    # - Queueing.*: a million simulated requests each (6 s in Release, 2 min here); the other
    #   simulator tests run the same event loop.
    # - RpcProcesses.*: real-time replays through five processes, whose requests miss the replay's
    #   120 s deadline here; RpcInProcess.* runs the same router, worker and replay code.
    # - RpcFaultsProcesses.*, RpcElasticProcesses.*: the same, with faults or elastic pools;
    #   TwinOutcomes.*, TwinGolden.*: an Azure slice or a golden scenario through the
    #   simulator, `twinfer run` and four serving processes in real time; BurstProcesses.*: three
    #   bursts of 20,000 requests through serve and replay processes.
    # - Profiler.*: times the kernels, which the CPU backend and worker engine tests run.
    # - The two request time-limit tests (EmbeddedRouter, RouterProtection): they check that short
    #   requests finish within a 300 ms wall-clock limit, which the instrumented kernels exceed; the
    #   other protection tests run the same timeout code.
    # - The embedded router's and the gRPC router's real-time fault replays (crash, partition,
    #   slowdown, restart, a gone worker): minutes each here; ThreadSanitizer runs them (tsan below),
    #   and the unit tests of their parts run here.
    # - The elastic pool's load-step, drain, canary and hot-swap tests: they need the CPU model to keep up
    #   with a real-time load (a quiet phase must stay quiet, a drain must come while long requests
    #   are in flight); the elastic tests that check structure only run here.
    exclude='^(Queueing\.|TwinOutcomes\.|Scenarios/TwinGolden\.|EmbeddedElastic\.(ALoadStep|ADraining|ACanary|AHotSwap)|RpcProcesses\.|RpcFaultsProcesses\.|RpcElasticProcesses\.|BurstProcesses\.|Profiler\.|EmbeddedRouter\.RequestTimeout|RouterProtection\.ARequestPastItsTimeLimit|EmbeddedRouter\.(APartitioned|ASlowed|ACrashed|RouterRestart)|RouterProtection\.(AForwardToAGone|WithoutRetriesAGone))'
    ;;
  tsan)
    sanitize=thread
    targets=(runtime_tests twinfer)
    select=(-L '^runtime$')
    # As for asan, and slower still here (up to six minutes a test); Profiler.* is single-threaded
    # besides. The embedded router's fault replays (crash, partition, slowdown, router restart) run
    # in the regular suite: under ThreadSanitizer a model reload takes longer than their replays,
    # and the threads they use (worker engines crashed and rebuilt, loader threads) are exercised
    # here by the WorkerEngine, elastic and gRPC fault tests. Two of the twelve routers run the
    # embedded router's per-router test (the same threads; the router is single-threaded policy).
    # The elastic pool's real-time tests are left out as for asan. The twin test of the routers that
    # read KV events needs each request of its trace to end before the next arrives (0.3 s apart on
    # the tiny model), which this slowdown breaks; the threads that carry the events (engines
    # publishing them, routers reading them, over gRPC too) run in RouterPrefixCache.* here. So does
    # the twin test of the host-memory tier, whose copies run on the worker's own thread before
    # its step (no thread of their own), and the twin test of prompts given as token ids, whose
    # serve leg runs serving processes as RpcProcesses.* do (its `twinfer run` leg is the same
    # threads as the eviction twin test's, which runs here).
    exclude='^(TwinOutcomes\.|TwinPrefix\.(RoutersReadingKvEvents|AHostTier|PromptsOfTokenIds)|Scenarios/TwinGolden\.|EmbeddedElastic\.(ALoadStep|ADraining|ACanary|AHotSwap)|RpcProcesses\.|RpcFaultsProcesses\.|RpcElasticProcesses\.|BurstProcesses\.|Profiler\.|EmbeddedRouter\.RequestTimeout|RouterProtection\.ARequestPastItsTimeLimit|EmbeddedRouter\.(ACrashed|APartitioned|ASlowed|RouterRestart)|Routers/EmbeddedRouterTest\..*"(consistent_hash|cost_aware|least_outstanding|multi_resource|power_of_two|queue_feedback|random|scored|cache_aware|kv_overlap)")'
    ;;
  *)
    echo "usage: $0 asan|tsan" >&2
    exit 2
    ;;
esac

build="build-$1"
start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" \
  -DTWINFER_SANITIZE="$sanitize" -DTWINFER_BUILD_TESTS=ON -DTWINFER_BUILD_BENCH=OFF
cmake --build "$build" -j "$jobs" --target "${targets[@]}"
built=$(date +%s)

export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp:print_suppressions=0"

cd "$build"
# One test at a time, as in scripts/test.sh: the runtime tests measure wall-clock behaviour.
# ThreadSanitizer: a test whose run reports a race is run once more, and the first report stays in
# the log (ctest prints each failed try): reports caused by gRPC's uninstrumented threads and
# allocator, which the suppressions cannot name, come and go (one in about six runs of the
# in-process gRPC tests so far, on memory recycled between two clusters of one test). A race that
# shows on both tries fails; one that shows on one try is in the log to read.
repeat=()
if [ "$1" = tsan ]; then repeat=(--repeat until-pass:2); fi
ctest --output-on-failure --timeout 900 "${repeat[@]}" "${select[@]}" ${exclude:+-E "$exclude"}
echo "sanitize $1: built in $((built - start)) s, tests ran in $(($(date +%s) - built)) s"
