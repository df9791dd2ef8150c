#!/usr/bin/env bash
# The CUDA backend's checks on a machine with a GPU, in one go: build (sm_90),
# the GPU test suites, compute-sanitizer over them (memcheck; RAGG_SANITIZERS=all
# adds racecheck, synccheck, initcheck), and the
# benchmark table. Logs go to $OUT (or ./gpu_check_out); the table is printed
# last. Usage: kernels/gpu_check.sh [bench args...]
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/gpu_check_out}
build=${RAGG_GPU_BUILD:-/tmp/ragg-build-gpu}
mkdir -p "$out"
jobs=$(nproc 2>/dev/null || echo 8)
start=$(date +%s)
elapsed() { echo $(( $(date +%s) - start )); }

{ nvidia-smi -L; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv; nvcc --version | tail -2; date -u; } > "$out/device.txt" 2>&1
cat "$out/device.txt"

configure() {
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DRAGG_BUILD_TESTS=ON -DRAGG_BUILD_BENCH=ON "$@" >> "$out/build.log" 2>&1
}
# GoogleTest: the system's, else built from the sources Debian ships.
if ! configure; then
  echo "configure failed (GoogleTest missing?): building it from /usr/src/googletest"
  rm -rf "$build"
  gsrc=/usr/src/googletest
  [ -d "$gsrc" ] || gsrc=$here/.gtest-src  # a copy carried to the machine
  if [ -d "$gsrc" ]; then
    cmake -S "$gsrc" -B /tmp/gtest-build -DCMAKE_INSTALL_PREFIX=/tmp/gtest \
      -DCMAKE_BUILD_TYPE=Release > "$out/gtest.log" 2>&1 &&
      cmake --build /tmp/gtest-build -j"$jobs" >> "$out/gtest.log" 2>&1 &&
      cmake --install /tmp/gtest-build >> "$out/gtest.log" 2>&1
    configure -DCMAKE_PREFIX_PATH=/tmp/gtest || { tail -30 "$out/build.log"; exit 1; }
  else
    tail -30 "$out/build.log"
    exit 1
  fi
fi
cmake --build "$build" -j"$jobs" --target test_cuda_backend test_cuda_solver ragg_bench_cuda >> "$out/build.log" 2>&1
echo "build: rc=$? after $(elapsed) s"
tail -5 "$out/build.log"

# The GPU suites, run directly so that their gtest summaries show they ran
# (a machine without a device would report them SKIPPED).
: > "$out/tests.log"
for t in test_cuda_solver test_cuda_backend; do
  timeout "${RAGG_TEST_TIMEOUT:-150}" "$build/tests/$t" > "$out/$t.log" 2>&1
  rc=$?
  echo "$t: rc=$rc after $(elapsed) s" | tee -a "$out/tests.log"
  grep -E "^\[==========\]|^\[  PASSED  \]|^\[  SKIPPED \]|^\[  FAILED  \]|FAILED TEST" "$out/$t.log" |
    tee -a "$out/tests.log"
  [ $rc -eq 0 ] || grep -B2 -A8 -E "Failure|error" "$out/$t.log" | head -60
done

timeout "${RAGG_BENCH_TIMEOUT:-100}" "$build/bench/cuda/ragg_bench_cuda" "$@" > "$out/bench.txt" 2> "$out/bench.err"
echo "bench: rc=$? after $(elapsed) s"

# compute-sanitizer: RAGG_SANITIZERS names the tools (default memcheck; "all"
# adds racecheck, synccheck and initcheck, over the solver suite and the same
# subset of the backend suite). Each run is bounded by RAGG_SANITIZER_TIMEOUT.
tools=${RAGG_SANITIZERS:-memcheck}
[ "$tools" = all ] && tools="memcheck racecheck synccheck initcheck"
if command -v compute-sanitizer >/dev/null 2>&1; then
  : > "$out/sanitizer.log"
  for tool in $tools; do
    extra=""
    [ "$tool" = racecheck ] && extra="--racecheck-report all"
    timeout "${RAGG_SANITIZER_TIMEOUT:-60}" compute-sanitizer --tool "$tool" $extra --error-exitcode 9 \
      "$build/tests/test_cuda_solver" > "$out/$tool.log" 2>&1
    echo "$tool test_cuda_solver: rc=$?" | tee -a "$out/sanitizer.log"
    timeout "${RAGG_SANITIZER_TIMEOUT:-90}" compute-sanitizer --tool "$tool" $extra --error-exitcode 9 \
      "$build/tests/test_cuda_backend" \
      --gtest_filter='*Graph*:*Errors*:*CenteredClipping*:*PreSteps*:*Repeated*' >> "$out/$tool.log" 2>&1
    echo "$tool test_cuda_backend (subset): rc=$?" | tee -a "$out/sanitizer.log"
    grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$out/$tool.log"
  done
else
  echo "compute-sanitizer: not found"
fi
echo "total: $(elapsed) s"
cat "$out/bench.txt"
