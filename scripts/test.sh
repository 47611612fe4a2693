#!/usr/bin/env bash
# test.sh — all set-up, then every CPU test: the normal build (with the CUDA
# code compiled when nvcc exists) and the CPU-only build under
# AddressSanitizer + UndefinedBehaviorSanitizer. GPU tests run on a GPU
# machine through scripts/gpu-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ -f scripts/fetch-test-data.sh ]; then bash scripts/fetch-test-data.sh; fi
bash scripts/build.sh build
(cd build && ctest -L cpu --output-on-failure -j"$(nproc)")
bash scripts/build.sh build-asan -DMD_CUDA=OFF -DMD_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest -L cpu --output-on-failure -j"$(nproc)")
echo "test.sh: all CPU tests passed (normal and sanitizer builds)"
