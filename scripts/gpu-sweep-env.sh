#!/usr/bin/env bash
# gpu-sweep-env.sh "ENV=.. [ENV=..]" ... — on the GPU machine: one build of
# the working tree, then a tg128 bench under each setting in turn (the first,
# the second, ..., then again; ROUNDS rounds, default 2), so settings are
# compared on the same machine in the same call. A setting is a list of
# VAR=value words ("" runs the defaults), e.g.
#   scripts/gpu-sweep-env.sh "" "MEGADELTA_PACE_NS=1200" "MEGADELTA_PACE_NS=1400"
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: gpu-sweep-env.sh SETTING [SETTING ...]"; exit 2; }
nvidia-smi > /dev/null 2>&1 || { echo "gpu-sweep-env.sh: no GPU here"; exit 1; }
. scripts/gpu-env.sh
rounds=${ROUNDS:-2}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMD_CUDA_ARCHS="${MD_CUDA_ARCHS:-90a}" -DMD_CUDA_PTX=OFF > /dev/null 2>&1
cmake --build build-gpu -j16 --target megadelta_cli > /tmp/sweep-build.log 2>&1 || { tail -20 /tmp/sweep-build.log; echo "BUILD FAILED"; exit 1; }
build-gpu/megadelta bench -p 0 -n 16 -r 1 > /dev/null 2>&1 # writes the synthetic 0.8B once
for i in $(seq "$rounds"); do
  for s in "$@"; do
    printf '%-50s %s\n' "${s:-(defaults)}" "$(env $s build-gpu/megadelta bench -p 0 -n 128 -r 5 2>/dev/null | grep tg128 | awk -F'|' '{print $6}')"
  done
done
