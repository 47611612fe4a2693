#!/usr/bin/env bash
# gpu-ab.sh A B [C ...] — on the GPU machine: A/B two or more versions of
# the source on the same GPU: each version built once, then tg128 benches
# alternating between their binaries (A, B, C, A, B, C, ...), so
# machine-to-machine spread (~2% between lent H100s) does not decide the
# comparison. AB_TARGET (default
# src/cuda/decode/megakernel.cu) and AB_ROUNDS (default 3) from the
# environment. Each version is either a file in the
# working tree that replaces AB_TARGET (default src/cuda/decode/megakernel.cu),
# e.g.
#   git show HEAD~1:src/cuda/decode/megakernel.cu > ab/a.cu; cp src/cuda/decode/megakernel.cu ab/b.cu
# or directories mirroring the repository, every file under them replacing
# the file at the same path (a change to several files), e.g. ab/a/src/cuda/decode/sync.cuh.
# (ab/ is ignored by git, so it travels to the GPU machine only when carried)
# AB_TESTS (optional): test targets built with each version and run once
# right after its build by ctest (exit status and worst line).
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
bins=$(mktemp -d)
restore() { (cd "$keep" && find . -type f | sed 's|^\./||') | while read -r f; do cp "$keep/$f" "$f"; done; rm -rf "$keep" "$bins"; }
trap restore EXIT
build() { # version $1 (index $2): build, keep its binary, run AB_TESTS
  use "$1" && cmake --build build-gpu -j16 --target megadelta_cli ${AB_TESTS:-} > /tmp/ab-build.log 2>&1 || { tail -20 /tmp/ab-build.log; echo "BUILD FAILED: $1"; return 1; }
  cp build-gpu/megadelta "$bins/$2"
  for t in ${AB_TESTS:-}; do
    (cd build-gpu && timeout 400 ctest -R "^$t\$" -V > /tmp/ab-test.log 2>&1); echo "$1 $t rc=$? $(grep -h worst /tmp/ab-test.log | head -1 | cut -c1-150)"
  done
}
bench() { printf '%-3s %-40s %s\n' "$1" "$2" "$("$bins/$3" bench -p 0 -n 128 -r 5 2>/dev/null | grep tg128 | awk -F'|' '{print $6}')"; }
names=(A B C D E F G H)
for n in "${!versions[@]}"; do build "${versions[$n]}" "$n" || exit 1; done
"$bins/0" bench -p 0 -n 16 -r 1 > /dev/null 2>&1 # writes the synthetic 0.8B once
for i in $(seq "$rounds"); do
  for n in "${!versions[@]}"; do bench "${names[$n]:-V$n}" "${versions[$n]}" "$n"; done
done
