#!/usr/bin/env bash
# The whole test suite from scratch: installs what is missing, builds everything (tests and
# benchmarks included, so that they keep compiling), and runs every test with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
rm -rf build
bash scripts/build.sh -DTWINFER_BUILD_TESTS=ON -DTWINFER_BUILD_BENCH=ON
cd build
# One test at a time: the multi-process and real-time runtime tests measure wall-clock behaviour
# and must not share the 2 cores with another test.
ctest --output-on-failure --timeout 900
