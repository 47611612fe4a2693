#!/usr/bin/env bash
# gpu-prefill-pack.sh — build the prefill test binaries here (needs nvcc, no
# GPU) and pack them into build-carry/bin.tgz for scripts/gpu-prefill-check.sh
# on the GPU machine (carry build-carry and .gpu-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-pf -DCMAKE_BUILD_TYPE=Release -DMD_CUDA_ARCHS="80;90a" -DMD_CUDA_PTX=OFF > /dev/null
cmake --build build-pf -j"$(nproc)" --target megadelta_cli test_prefill_ops test_prefill_tiny > /dev/null
rm -rf build-carry/stage && mkdir -p build-carry/stage
cp build-pf/megadelta build-pf/tests/gpu_prefill/test_prefill_ops build-carry/stage/
cp build-pf/tests/gpu_prefill/test_prefill_tiny build-carry/stage/test_prefill
strip build-carry/stage/*
tar czf build-carry/bin.tgz -C build-carry/stage .
rm -rf build-carry/stage
ls -la build-carry/bin.tgz
