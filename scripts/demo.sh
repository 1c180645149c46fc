#!/usr/bin/env bash
# The main job on the bundled defaults: installs what is missing, builds, simulates the bundled
# default trace on the bundled 8xH100 cluster and prints the results table; then serves the bundled
# CPU trace for real (a tiny transformer on this machine's CPU, router and workers as threads) and
# prints the same table for it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh build
bash scripts/build.sh -DTWINFER_BUILD_TESTS=OFF -DTWINFER_BUILD_BENCH=OFF >/dev/null
echo "== simulated: bundled trace on 8xH100 (configs/h100x8.json)"
./build/bin/twinfer sim --config configs/h100x8.json --out out/demo "$@"
echo
echo "== real: bundled CPU trace on a tiny transformer, 2 CPU workers (configs/cpu_tiny.json)"
./build/bin/twinfer run --config configs/cpu_tiny.json --out out/demo_real
