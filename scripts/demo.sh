#!/usr/bin/env bash
# The main job on the bundled defaults: installs what is missing, builds, simulates the bundled
# default trace on the bundled 8xH100 cluster, and prints the results table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh -DTWINFER_BUILD_TESTS=OFF -DTWINFER_BUILD_BENCH=OFF >/dev/null
./build/bin/twinfer sim --config configs/h100x8.json --out out/demo "$@"
