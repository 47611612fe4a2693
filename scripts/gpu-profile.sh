#!/usr/bin/env bash
# gpu-profile.sh — on the GPU machine: build, then profile one decode launch
# of the synthetic 0.8B with Nsight Compute (warp stall reasons, scheduler and
# instruction statistics, per-SASS-instruction stall samples). Writes
# details.txt, source.csv.gz (per SASS instruction), source-cuda.csv.gz
# (per CUDA line) and sass-lines.txt.gz (the kernel's SASS with source lines)
# to ./gpu-profile-out, all of it also as one profile.tar.gz in $OUT when set
# (the device tool returns only a few files), and prints the kernel's executed SASS
# footprint (scripts/sass_footprint.py) and where its warps stall, by function
# and source line (scripts/stall_lines.py).
# Usage: scripts/gpu-profile.sh [n_steps]   (default 16)
set -uo pipefail
cd "$(dirname "$0")/.."
out=$PWD/gpu-profile-out
rm -rf "$out" && mkdir -p "$out"
. scripts/gpu-env.sh
n=${1:-16}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMD_CUDA_ARCHS="${MD_CUDA_ARCHS:-90a}" -DMD_CUDA_PTX=OFF >"$out/cmake.log" 2>&1 \
  && cmake --build build-gpu -j16 --target megadelta_cli >"$out/build.log" 2>&1 || { tail -n 30 "$out/build.log"; exit 1; }
build-gpu/megadelta bench -p 0 -n "$n" -r 1 > /dev/null 2>&1   # writes the synthetic 0.8B once
ncu -k regex:md_decode_kernel --launch-skip 1 --launch-count 1 \
  --section WarpStateStats --section SourceCounters --section SchedulerStats --section InstructionStats \
  --section LaunchStats --section Occupancy -f -o "$out/prof" build-gpu/megadelta bench -p 0 -n "$n" -r 1 > "$out/ncu.log" 2>&1
tail -n 5 "$out/ncu.log"
ncu -i "$out/prof.ncu-rep" --page details > "$out/details.txt" 2>&1
ncu -i "$out/prof.ncu-rep" --page source --csv --print-source sass 2> "$out/source.err" | gzip > "$out/source.csv.gz"
ncu -i "$out/prof.ncu-rep" --page source --csv --print-source cuda 2>> "$out/source.err" | gzip > "$out/source-cuda.csv.gz"
rm -f "$out/prof.ncu-rep"
# the profiled kernel's SASS with source lines (from the binary itself, so the
# offsets match the profile), and its executed footprint (instruction cache)
elf=$(mktemp -d) && (cd "$elf" && cuobjdump -xelf all "$OLDPWD/build-gpu/megadelta" > /dev/null 2>&1)
for f in "$elf"/*.cubin; do
  # (grep without -q: with pipefail, nvdisasm's SIGPIPE would fail the test)
  if nvdisasm -c "$f" 2>/dev/null | grep 'md_megakernel16md_decode_kernelILb1' > /dev/null; then nvdisasm -g -c "$f" | gzip > "$out/sass-lines.txt.gz"; break; fi
done
rm -rf "$elf"
[ -s "$out/sass-lines.txt.gz" ] && python3 scripts/sass_footprint.py "$out/source.csv.gz" "$out/sass-lines.txt.gz" | head -20
[ -s "$out/sass-lines.txt.gz" ] && python3 scripts/stall_lines.py "$out/source.csv.gz" "$out/sass-lines.txt.gz" 15
grep -iE 'stall|warp cycles|issued|eligible|active warps|no instruction' "$out/details.txt" | head -60
if [ -n "${OUT:-}" ]; then
  tar -czf "$OUT/profile.tar.gz" -C "$out" . && echo "profile files: \$OUT/profile.tar.gz (then scripts/stall_lines.py source.csv.gz sass-lines.txt.gz 25 FUNCTION)"
fi
