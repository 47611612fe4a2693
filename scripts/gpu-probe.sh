#!/usr/bin/env bash
# gpu-probe.sh — on the GPU machine: build the CLI, then the decode trace and
# tg128 under each timing probe (MEGADELTA_PROBE bits, decode.cuh: 32 = none, the
# instrumented build's baseline; 1 = no HBM (each CTA re-reads its own L2-resident 128 KB),
# 2 = no dot products, 4 = no waits, 8 = DOWN reads H inputs, 16 = no attention combine, split-KV contexts only: past MEGADELTA_ATTN_WHOLE)
# to tell memory time from consumer time. Probe 0 runs the plain build, ~16% faster than
# the instrumented one (session 10): compare probes with 32. (Until session 5 probe 1 had
# every CTA copy the same row, an L2 hot spot: 364 tok/s.)
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/gpu-env.sh
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMD_CUDA_ARCHS="${MD_CUDA_ARCHS:-90a}" -DMD_CUDA_PTX=OFF > /dev/null \
  && cmake --build build-gpu -j16 --target megadelta_cli > /tmp/probe-build.log 2>&1 || { tail -30 /tmp/probe-build.log; exit 1; }
for pr in ${PROBES:-32 1 2}; do
  echo "== probe $pr"
  MEGADELTA_PROBE=$pr MEGADELTA_TRACE=1 build-gpu/megadelta bench -p 0 -n 128 -r 1 2>&1 \
    | grep -E 'critical path|per layer|attention items' | tail -n 3 | cut -c1-420   # (every launch prints one: the last)
  MEGADELTA_PROBE=$pr build-gpu/megadelta bench -p 0 -n 128 -r 3 2>&1 | grep tg128
done
