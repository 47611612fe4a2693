#!/usr/bin/env bash
# build.sh [BUILD_DIR] [extra cmake args...] — configures and builds megadelta.
# The CUDA backend is built when nvcc is found (PATH or /usr/local/cuda/bin);
# MD_CUDA_ARCHS (env) narrows the architectures, e.g. MD_CUDA_ARCHS=90a in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
shift || true
args=(-DCMAKE_BUILD_TYPE=Release)
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
if [ -n "${MD_CUDA_ARCHS:-}" ]; then args+=("-DMD_CUDA_ARCHS=${MD_CUDA_ARCHS}" -DMD_CUDA_PTX=OFF); fi
cmake -S . -B "$dir" "${args[@]}" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
