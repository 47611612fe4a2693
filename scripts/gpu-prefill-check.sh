#!/usr/bin/env bash
# gpu-prefill-check.sh [MODE] — on the GPU machine: build (unless a carried
# build is there), run the prefill tests and the prefill benchmark, print a
# short table last. Logs go to $OUT (or ./gpu-prefill-out).
# MODE: quick  (op tests, tiny model, fixtures, bench pp512 + profile)
#       full   (default: quick + the 0.8B tests, pp512/4096/32768)
#       bench  (bench and profile only)
# The binaries may be carried from a machine with nvcc as build-carry/bin.tgz
# (megadelta, test_prefill_ops, test_prefill: scripts/gpu-prefill-pack.sh);
# the tests run without ctest, so the checkout may live at any path.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=${1:-full}
out=${OUT:-$PWD/gpu-prefill-out}
mkdir -p "$out"
. scripts/gpu-env.sh
declare -a rows
row() { rows+=("$(printf '| %-30s | %-70s |' "$1" "$2")"); }

t0=$(date +%s)
# binaries: carried (build-carry/bin.tgz: megadelta, test_prefill_ops, test_prefill) or built here
if [ -f build-carry/bin.tgz ]; then
  bin=/tmp/md-prefill-bin
  mkdir -p $bin && tar xzf build-carry/bin.tgz -C $bin
  row build "carried binaries"
else
  bd=build-gpu-prefill
  bin=$bd/bin
  cmake -S . -B $bd -DCMAKE_BUILD_TYPE=Release -DMD_CUDA_ARCHS="80;90a" -DMD_CUDA_PTX=OFF >"$out/cmake.log" 2>&1 \
    && cmake --build $bd -j16 --target megadelta_cli test_prefill_ops test_prefill_tiny >"$out/build.log" 2>&1
  if [ $? -ne 0 ]; then tail -40 "$out/build.log" "$out/cmake.log"; echo "BUILD FAILED"; exit 1; fi
  mkdir -p $bin && cp $bd/megadelta $bd/tests/gpu_prefill/test_prefill_ops $bin/ && cp $bd/tests/gpu_prefill/test_prefill_tiny $bin/test_prefill
  row build "built here ($(( $(date +%s) - t0 )) s)"
fi
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader > "$out/gpu.txt" 2>&1
row gpu "$(cat "$out/gpu.txt")"

tmp=/tmp/md-prefill-test
logs=$tmp/logs
mkdir -p $tmp $logs
export MD_TEST_FIXTURES=$PWD/tests/fixtures MD_TEST_BIN=$bin/megadelta
run_test() { # name timeout executable args... (the arguments of tests/gpu_prefill/CMakeLists.txt)
  local name=$1 lim=$2 exe=$3; shift 3
  mkdir -p $tmp/$name
  local t=$(date +%s)
  MD_TEST_TMP=$tmp/$name timeout $lim $bin/$exe "$@" > "$logs/$name.log" 2>&1
  local rc=$?
  { echo "===== $name (rc=$rc): $exe $*"; cat "$logs/$name.log"; } >> "$out/tests.log"
  local fails; fails=$(grep -c 'FAIL' "$logs/$name.log")
  row "$name" "rc=$rc, $fails FAIL lines, $(( $(date +%s) - t )) s"
}

if [ "$mode" != bench ]; then
  run_test test_prefill_ops 60 test_prefill_ops
  run_test test_prefill_tiny 60 test_prefill --preset tiny --lengths 1,63,64,65,512 --handoff 65,512
  run_test test_prefill_fixtures 60 test_prefill --fixtures --lengths 1,63,64,65,512 --handoff 72
fi
synth=$tmp/synth-qwen3.5-0.8b
[ -f $synth/.complete ] || { $bin/megadelta synth --preset qwen3.5-0.8b -o $synth > "$logs/synth.log" 2>&1 && touch $synth/.complete; }
lens=512
[ "$mode" = quick ] || lens=512,4096,32768
$bin/megadelta bench -m $synth -p $lens -n 0 -r 5 > "$out/bench.txt" 2>&1
row "bench pp$lens" "rc=$?"
{ echo "with CUDA-graph replay of repeated calls (MEGADELTA_PREFILL_GRAPH=1; the mean includes the capturing call):"; MEGADELTA_PREFILL_GRAPH=1 $bin/megadelta bench -m $synth -p $lens -n 0 -r 5; } >> "$out/bench.txt" 2>&1
MEGADELTA_PREFILL_PROFILE=2 MEGADELTA_PREFILL_GRAPH=1 $bin/megadelta bench -m $synth -p 512 -n 0 -r 10 > /dev/null 2> "$logs/timing.txt"
MEGADELTA_PREFILL_PROFILE=2 $bin/megadelta bench -m $synth -p 512 -n 0 -r 5 > /dev/null 2>> "$logs/timing.txt"
MEGADELTA_PREFILL_PROFILE=1 $bin/megadelta bench -m $synth -p 512 -n 0 -r 5 > /dev/null 2> "$logs/profile512.txt"
[ "$mode" = quick ] || MEGADELTA_PREFILL_PROFILE=1 $bin/megadelta bench -m $synth -p 4096 -n 0 -r 1 > /dev/null 2> "$logs/profile4096.txt"
cat "$logs"/timing.txt "$logs"/profile*.txt > "$out/profile.txt"

if [ "$mode" = full ]; then
  run_test test_prefill_08b 150 test_prefill --preset qwen3.5-0.8b --rows 64 --lengths 1,63,64,65,512 --handoff 512 --long 4096
  run_test test_prefill_08b_portable 80 test_prefill --preset qwen3.5-0.8b --kernel portable --rows 64 --lengths 65,512 --handoff 512
fi

echo "== op tests"; grep -hE 'FAIL|rel L2' "$logs"/test_prefill_ops.log 2>/dev/null | grep -E 'FAIL' | head -20
grep -hA2 'timing m=' "$logs"/test_prefill_ops.log 2>/dev/null
for t in tiny fixtures 08b 08b_portable; do
  [ -f "$logs/test_prefill_$t.log" ] || continue
  echo "== $t"; grep -hE 'rel L2|greedy|failed|passed|:$|error' "$logs/test_prefill_$t.log" | cut -c1-150 | head -40
done
echo "== pp512 per call (host clock):"; grep -h 'prefill timing' "$logs/timing.txt" | cut -c1-120
echo "== profile pp512 (last run)"; awk '/prefill profile/{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$logs/profile512.txt"
echo; cat "$out/bench.txt"
echo
printf '%s\n' "${rows[@]}"
