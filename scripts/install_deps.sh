#!/usr/bin/env bash
# Installs Twinfer's build and test dependencies from Debian's packages. Idempotent: installs only
# what is missing. Runs apt-get as root (directly, or through sudo when not root).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libsimgrid-dev          # the simulator's engine
  nlohmann-json3-dev      # configs, traces, outputs
  libeigen3-dev           # CPU kernels of the runtime
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev        # bench/
  clang libclang-rt-14-dev  # scripts/fuzz.sh: libFuzzer with AddressSanitizer and UBSan
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc  # the runtime's transport
  pybind11-dev python3-dev                                                 # the Python module
  python3-numpy python3-pandas python3-pytest python3-matplotlib           # its results, tests, plots
  jupyter-nbconvert python3-nbclient python3-ipykernel python3-nbformat     # notebooks
)

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
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
