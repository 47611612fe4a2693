#!/usr/bin/env bash
# gpu-ab.sh A B [C ...] — on the GPU machine: A/B two or more versions of
# the source on the same GPU, alternating builds (A, B, C, A, B, C, ...) with
# a tg128 bench after each, so machine-to-machine spread (~2% between lent
# H100s) does not decide the comparison. AB_TARGET (default
# src/cuda/decode/megakernel.cu) and AB_ROUNDS (default 3) from the
# environment. Each version is either a file in the
# working tree that replaces AB_TARGET (default src/cuda/decode/megakernel.cu),
# e.g.
#   git show HEAD~1:src/cuda/decode/megakernel.cu > ab/a.cu; cp src/cuda/decode/megakernel.cu ab/b.cu
# or directories mirroring the repository, every file under them replacing
# the file at the same path (a change to several files), e.g. ab/a/src/cuda/decode/sync.cuh.
# (ab/ is ignored by git, so it travels to the GPU machine only when carried)
# Every replaced file is restored at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: gpu-ab.sh A B [C ...]"; exit 2; }
versions=("$@") target=${AB_TARGET:-src/cuda/decode/megakernel.cu} rounds=${AB_ROUNDS:-3}
nvidia-smi > /dev/null 2>&1 || { echo "gpu-ab.sh: no GPU here (bench would time the CPU backend)"; exit 1; }
. scripts/gpu-env.sh
# the paths a version replaces
paths() { if [ -d "$1" ]; then (cd "$1" && find . -type f | sed 's|^\./||'); else echo "$target"; fi; }
keep=$(mktemp -d)
for f in $(for v in "${versions[@]}"; do paths "$v"; done | sort -u); do mkdir -p "$keep/$(dirname "$f")" && cp "$f" "$keep/$f"; done
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMD_CUDA_ARCHS="${MD_CUDA_ARCHS:-90a}" -DMD_CUDA_PTX=OFF > /dev/null 2>&1
use() { # put version $1 in place: the saved originals first, then its files
  (cd "$keep" && find . -type f | sed 's|^\./||') | while read -r f; do cp "$keep/$f" "$f"; done
  if [ -d "$1" ]; then paths "$1" | while read -r f; do cp "$1/$f" "$f"; done; else cp "$1" "$target"; fi
}
build() { use "$1" && cmake --build build-gpu -j16 --target megadelta_cli > /tmp/ab-build.log 2>&1 || { tail -20 /tmp/ab-build.log; echo "BUILD FAILED: $1"; }; }
bench() { printf '%-3s %-40s %s\n' "$1" "$2" "$(build-gpu/megadelta bench -p 0 -n 128 -r 5 2>/dev/null | grep tg128 | awk -F'|' '{print $6}')"; }
build "${versions[0]}" && build-gpu/megadelta bench -p 0 -n 16 -r 1 > /dev/null 2>&1 # writes the synthetic 0.8B once
names=(A B C D E F G H)
for i in $(seq "$rounds"); do
  for n in "${!versions[@]}"; do build "${versions[$n]}" && bench "${names[$n]:-V$n}" "${versions[$n]}"; done
done
(cd "$keep" && find . -type f | sed 's|^\./||') | while read -r f; do cp "$keep/$f" "$f"; done
rm -rf "$keep"
