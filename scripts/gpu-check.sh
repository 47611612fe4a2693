#!/usr/bin/env bash
# gpu-check.sh [MODE] — on the GPU machine: build, run the GPU tests and the
# benchmark, print a short table last. MODE: quick (tiny model only), full
# (default: + 0.8B tests, sanitizers), bench (build + bench only), decode
# (tiny decode tests + a traced tg128: where each phase's time goes).
# Logs go to ./gpu-check-out; when $OUT is set (the device tool, which returns
# at most 8 files), $OUT gets bench.txt and all logs as one logs.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-full}
out=$PWD/gpu-check-out
rm -rf "$out"; mkdir -p "$out"
ship_logs() {
  [ -n "${OUT:-}" ] || return 0
  tar -czf "$OUT/logs.tar.gz" -C "$out" . 2>/dev/null
  cp "$out/bench.txt" "$OUT/" 2>/dev/null
  return 0
}
trap ship_logs EXIT
. scripts/gpu-env.sh
declare -a rows
row() { rows+=("$(printf '| %-34s | %-60s |' "$1" "$2")"); }
# A failed sanitizer run: the lines that say what and where (hazards, errors,
# the test's own failure), so they show in the output even when the log does
# not come back.
sanitizer_excerpt() {
  echo "== $(basename "$1") (rc != 0):"
  grep -hE 'Race reported|Error|Invalid|hazard|at 0x|in .*\.cu|FAIL|differ|mismatch|abort' "$1" | grep -v 'ERROR SUMMARY: 0' | head -20 | cut -c1-220
}

t0=$(date +%s)
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DMD_CUDA_ARCHS="${MD_CUDA_ARCHS:-80;90a}" -DMD_CUDA_PTX=OFF >"$out/cmake.log" 2>&1 \
  && cmake --build build-gpu -j16 -- -k >"$out/build.log" 2>&1
build_rc=$?
if [ ! -x build-gpu/megadelta ]; then tail -n 40 "$out/cmake.log" "$out/build.log"; echo "BUILD FAILED"; exit 1; fi
row build "rc=$build_rc ($(( $(date +%s) - t0 )) s) $(grep -m1 -o 'error: .*' "$out/build.log" | cut -c1-40)"
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader > "$out/gpu.txt"
row gpu "$(cat "$out/gpu.txt")"

run_ctest() { # label-regex name
  (cd build-gpu && ctest -R "$1" -V --timeout 1200 > "$out/ctest-$2.log" 2>&1)
  local rc=$?
  local summary; summary=$(grep -E 'tests passed|tests failed' "$out/ctest-$2.log" | tail -1)
  row "ctest $2" "${summary:-rc=$rc}"
  grep -hE 'worst rel L2|prefill\(|runs x|rel L2|lockstep|chosen logits|per step' "$out/ctest-$2.log" | head -16 | sed 's/^/    /'
}

if [ "$mode" = decode ]; then
  run_ctest 'test_gpu_tiny|test_gpu_fixtures|test_gpu_sampler' tiny
  build-gpu/megadelta bench -p 0 -n 128 -r 1 > /dev/null 2>&1   # writes the synthetic 0.8B once
  MEGADELTA_TRACE=1 build-gpu/megadelta bench -p 0 -n 128 -r 1 > "$out/trace.txt" 2> "$out/trace.err"
  tail -n 14 "$out/trace.err"
  for cfg in ${DECODE_SWEEP:-"MEGADELTA_STAGE_KB=16" "MEGADELTA_PREFETCH_KB=64"}; do
    env $cfg build-gpu/megadelta bench -p 0 -n 128 -r 3 --json 2>/dev/null | grep -o '"tokens_per_second": [0-9.]*' \
      | sed "s/^/$cfg: /"
  done
  build-gpu/megadelta bench -p 0 -n 128 -r 5 > "$out/bench.txt" 2> "$out/bench.err"
  cat "$out/bench.txt"
  printf '%s\n' "${rows[@]}"
  exit 0
fi
if [ "$mode" != bench ] && [ "$mode" != decode ]; then
  run_ctest 'test_gpu_tiny|test_gpu_repeat|test_gpu_fixtures|test_gpu_sampler' tiny
  for g in 2 3 7; do
    MEGADELTA_GRID=$g MEGADELTA_WATCHDOG_MS=20000 timeout 300 build-gpu/tests/gpu/test_gpu_tiny_hopper \
      > "$out/grid$g.log" 2>&1; row "grid $g (tiny, hopper)" "rc=$? $(grep -h 'worst' "$out/grid$g.log" | head -1 | cut -c1-50)"
  done
  # the split-KV path's cross-item waits at a small grid (the rows above attend whole: <= 128 positions)
  MEGADELTA_ATTN_WHOLE=0 MEGADELTA_GRID=3 MEGADELTA_WATCHDOG_MS=20000 timeout 300 build-gpu/tests/gpu/test_gpu_tiny_hopper \
    > "$out/grid3-split.log" 2>&1; row "grid 3, split-KV attention (tiny)" "rc=$? $(grep -h 'worst' "$out/grid3-split.log" | head -1 | cut -c1-50)"
  MEGADELTA_DELAY_SEED=12345 timeout 300 build-gpu/tests/gpu/test_gpu_tiny_hopper > "$out/delay.log" 2>&1
  row "random delays (tiny)" "rc=$? $(grep -h worst "$out/delay.log" | head -1 | cut -c1-50)"
  # the split-KV attention (contexts past MEGADELTA_ATTN_WHOLE, by default 128 positions on the
  # tiny model, whose test runs 96), and its combine in batches of 2 chunks (its multi-batch path,
  # which the default of 32 reaches only past ~500 positions)
  MEGADELTA_ATTN_WHOLE=0 timeout 300 build-gpu/tests/gpu/test_gpu_tiny_hopper > "$out/split.log" 2>&1
  row "split-KV attention (tiny)" "rc=$? $(grep -h worst "$out/split.log" | head -1 | cut -c1-50)"
  MEGADELTA_ATTN_WHOLE=0 MEGADELTA_COMBINE_BATCH=2 timeout 300 build-gpu/tests/gpu/test_gpu_tiny_hopper > "$out/combine2.log" 2>&1
  row "combine batches of 2 (tiny)" "rc=$? $(grep -h worst "$out/combine2.log" | head -1 | cut -c1-50)"
  # a ring of 2 stages (MEGADELTA_STAGES): every slot refilled while the other is in use
  MEGADELTA_STAGES=2 timeout 300 build-gpu/tests/gpu/test_gpu_tiny_hopper > "$out/stages2.log" 2>&1
  row "ring of 2 stages (tiny, hopper)" "rc=$? $(grep -h worst "$out/stages2.log" | head -1 | cut -c1-50)"
  # folded ring chunks on the tiny model: 4 KB stages split its 256- and 384-column rows into
  # segments of 64, which OUT / O / DOWN fold (the 0.8B folds at the default stage; both fill
  # paths; the trace says whether it folded)
  for k in hopper portable; do
    MEGADELTA_STAGE_KB=4 timeout 300 build-gpu/tests/gpu/test_gpu_tiny_$k > "$out/fold-$k.log" 2>&1
    row "folded chunks (tiny, 4 KB stages, $k)" "rc=$? $(grep -h worst "$out/fold-$k.log" | head -1 | cut -c1-50)"
  done
  MEGADELTA_STAGE_KB=4 MEGADELTA_TRACE=1 MEGADELTA_TRACE_DUMP="$out/fold-trace.csv" build-gpu/megadelta bench --preset tiny -p 0 -n 8 -r 1 \
    > /dev/null 2> "$out/fold-trace.log"
  grep -q 'OUT / O / DOWN folded' "$out/fold-trace.log"
  row "  (tiny at 4 KB stages: the trace)" "rc=$? $(grep -o 'OUT / O / DOWN [a-z ]*' "$out/fold-trace.log" | head -1)"
  # the raw dump: a header, then one line per CTA and slot (the tiny model: 4 layers x 5 phases + the LM head)
  lines=$(($(wc -l < "$out/fold-trace.csv" 2>/dev/null || echo 0) - 1))
  [ "$lines" -gt 0 ] && [ $((lines % 21)) -eq 0 ] && head -1 "$out/fold-trace.csv" | grep -q '^cta,layer,phase,kind,'
  row "  (the trace's raw dump)" "rc=$? $lines lines, $((lines / 21)) CTAs"
  # every timing probe runs to its end (results wrong by design: only the exit status counts)
  MEGADELTA_PROBE=31 MEGADELTA_WATCHDOG_MS=20000 timeout 300 build-gpu/megadelta bench --preset tiny -p 0 -n 16 -r 1 > "$out/probes.log" 2>&1
  row "probes 1-16 together (tiny bench)" "rc=$?"
fi
if [ "$mode" = full ]; then
  run_ctest 'test_gpu_08b' 08b
  run_ctest 'test_prefill' prefill
  for tool in memcheck racecheck synccheck; do
    MEGADELTA_WATCHDOG_MS=0 MEGADELTA_GRID=16 timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 \
      build-gpu/tests/gpu/test_gpu_tiny_hopper --steps 6 > "$out/sanitizer-$tool.log" 2>&1
    rc=$?
    row "compute-sanitizer $tool" "rc=$rc $(grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-$tool.log" | tail -1)"
    [ $rc -ne 0 ] && sanitizer_excerpt "$out/sanitizer-$tool.log"
  done
  # a small grid: several recurrence items a CTA (their inputs at c.vec[H + 32 it]) and the
  # in-projection's pool in several batches
  MEGADELTA_WATCHDOG_MS=0 MEGADELTA_GRID=7 timeout 300 compute-sanitizer --tool racecheck --error-exitcode 9 \
    build-gpu/tests/gpu/test_gpu_tiny_hopper --steps 4 > "$out/sanitizer-racecheck-grid7.log" 2>&1
  rc=$?
  row "compute-sanitizer racecheck (grid 7)" "rc=$rc $(grep -hE 'RACECHECK SUMMARY' "$out/sanitizer-racecheck-grid7.log" | tail -1)"
  [ $rc -ne 0 ] && sanitizer_excerpt "$out/sanitizer-racecheck-grid7.log"
  # the same with the split-KV attention and its combine
  MEGADELTA_ATTN_WHOLE=0 MEGADELTA_WATCHDOG_MS=0 MEGADELTA_GRID=7 timeout 300 compute-sanitizer --tool racecheck --error-exitcode 9 \
    build-gpu/tests/gpu/test_gpu_tiny_hopper --steps 4 > "$out/sanitizer-racecheck-grid7-split.log" 2>&1
  rc=$?
  row "compute-sanitizer racecheck (grid 7, split-KV)" "rc=$rc $(grep -hE 'RACECHECK SUMMARY' "$out/sanitizer-racecheck-grid7-split.log" | tail -1)"
  [ $rc -ne 0 ] && sanitizer_excerpt "$out/sanitizer-racecheck-grid7-split.log"
  # folded chunks under the sanitizers (4 KB stages: the tiny model's OUT / O / DOWN fold at grid 16)
  for tool in memcheck racecheck; do
    MEGADELTA_WATCHDOG_MS=0 MEGADELTA_GRID=16 MEGADELTA_STAGE_KB=4 timeout 300 compute-sanitizer --tool $tool --error-exitcode 9 \
      build-gpu/tests/gpu/test_gpu_tiny_hopper --steps 4 > "$out/sanitizer-fold-$tool.log" 2>&1
    rc=$?
    row "compute-sanitizer $tool (folded)" "rc=$rc $(grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-fold-$tool.log" | tail -1)"
    [ $rc -ne 0 ] && sanitizer_excerpt "$out/sanitizer-fold-$tool.log"
  done
  for tool in memcheck racecheck; do
    # (the watchdog off, as for the decode runs: a full grid under racecheck once took
    # more than its 10 s for one wait, session 9)
    MEGADELTA_WATCHDOG_MS=0 timeout 300 compute-sanitizer --tool $tool --error-exitcode 9 build-gpu/tests/gpu/test_gpu_sampler --preset tiny --trials 60 --steps 6 \
      > "$out/sanitizer-sampler-$tool.log" 2>&1
    rc=$?
    row "compute-sanitizer $tool (sampler)" "rc=$rc $(grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY' "$out/sanitizer-sampler-$tool.log" | tail -1)"
    [ $rc -ne 0 ] && sanitizer_excerpt "$out/sanitizer-sampler-$tool.log"
  done
fi
build-gpu/megadelta bench -p 512,4096 -n 128 -r 5 > "$out/bench.txt" 2> "$out/bench.err"
row bench "rc=$?"
echo
cat "$out/bench.txt"
echo
printf '%s\n' "${rows[@]}"
