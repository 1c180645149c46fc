#!/usr/bin/env bash
# Installs Twinfer's dependencies from Debian's packages. Idempotent: installs only what is
# missing. Runs apt-get as root (directly, or through sudo when not root); apt's output goes to a
# log file, printed only when the install fails.
#   scripts/install_deps.sh build   what building Twinfer (CLI, runtime, Python module) needs
#   scripts/install_deps.sh [test]  that, plus the test and benchmark toolchain (GoogleTest, Google
#                                   Benchmark, clang for the fuzzers, pytest, Jupyter)
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config git
  ccache                  # compiler cache, used by the build when present
  libsimgrid-dev          # the simulator's engine
  nlohmann-json3-dev      # configs, traces, outputs
  libeigen3-dev           # CPU kernels of the runtime
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc  # the runtime's transport
  libboost-dev libssl-dev # Boost.Beast and OpenSSL: the HTTP(S) server of /metrics and /healthz
  pybind11-dev python3-dev python3-numpy python3-pandas                   # the Python module
)
test_packages=(
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev        # bench/
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer with AddressSanitizer and UBSan
  python3-pytest python3-matplotlib                                         # Python tests, plots
  jupyter-nbconvert python3-nbclient python3-ipykernel python3-nbformat     # notebooks
)

case "${1:-test}" in
  build) packages=("${build_packages[@]}") ;;
  test) packages=("${build_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
log="${TMPDIR:-/tmp}/twinfer-install-deps.log"
echo "install_deps: installing ${#missing[@]} packages (${missing[*]}); apt's output in $log"
export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" apt-get update -qq && \
       "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "install_deps: apt-get failed; the whole log is $log" >&2
  exit 1
fi
echo "install_deps: done"
