#!/usr/bin/env bash
# A short GPU check of the coordinate-wise kernels: build (sm_90) only
# test_cuda_backend and ragg_bench_cuda, the benchmark restricted to the
# coordinate-wise rules (and the mean), then the backend suite. Logs to $OUT.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
out=${OUT:-$here/gpu_check_out}
build=/tmp/ragg-build-coord
mkdir -p "$out"
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }
{ nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader; date -u; } | tee "$out/device.txt"
gsrc=/usr/src/googletest; [ -d "$gsrc" ] || gsrc=$here/.gtest-src
cmake -S "$gsrc" -B /tmp/gtest-build -DCMAKE_INSTALL_PREFIX=/tmp/gtest -DCMAKE_BUILD_TYPE=Release > "$out/build.log" 2>&1 &&
  cmake --build /tmp/gtest-build -j16 >> "$out/build.log" 2>&1 && cmake --install /tmp/gtest-build >> "$out/build.log" 2>&1
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DRAGG_BUILD_TESTS=ON \
  -DRAGG_BUILD_BENCH=ON -DCMAKE_PREFIX_PATH=/tmp/gtest >> "$out/build.log" 2>&1 || { tail -20 "$out/build.log"; exit 1; }
cmake --build "$build" -j16 --target test_cuda_backend ragg_bench_cuda >> "$out/build.log" 2>&1
echo "build: rc=$? after $(elapsed) s"; grep -iE "warning|error" "$out/build.log" | head -5
timeout "${RAGG_BENCH_TIMEOUT:-45}" "$build/bench/cuda/ragg_bench_cuda" --rules mean,median,trimmed_mean,meamed \
  --no-baselines "$@" > "$out/bench.txt" 2> "$out/bench.err"
echo "bench: rc=$? after $(elapsed) s"; cat "$out/bench.err" | head -5
timeout "${RAGG_TEST_TIMEOUT:-60}" "$build/tests/test_cuda_backend" > "$out/test_cuda_backend.log" 2>&1
rc=$?
echo "test_cuda_backend: rc=$rc after $(elapsed) s"
grep -E "^\[==========\]|^\[  PASSED  \]|^\[  SKIPPED \]|^\[  FAILED  \]|FAILED TEST|^\[       OK \]" "$out/test_cuda_backend.log"
[ $rc -eq 0 ] || grep -B2 -A8 -E "Failure|error" "$out/test_cuda_backend.log" | head -60
cat "$out/bench.txt"
