#!/usr/bin/env bash
# The CUDA backend's checks on a machine with a GPU, built there: configure
# (sm_90; GoogleTest from the system, else built from /usr/src/googletest or a
# carried .gtest-src), then kernels/gpu_stage.sh and kernels/gpu_run.sh (the
# GPU and NCCL suites, the Python GPU tests, compute-sanitizer, the
# benchmarks). Where the toolkit is at hand without a GPU, build there with
# kernels/gpu_stage.sh and carry the stage instead: the GPU's time then goes to
# running. Logs go to $OUT (or ./gpu_run_out). Usage: kernels/gpu_check.sh;
# gpu_run.sh's knobs (RAGG_SANITIZERS, RAGG_BENCH_ARGS, ...) apply.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/gpu_run_out}
build=${RAGG_GPU_BUILD:-/tmp/ragg-build-gpu}
stage=${RAGG_GPU_STAGE:-/tmp/ragg-stage-gpu}
mkdir -p "$out"
jobs=$(nproc 2>/dev/null || echo 8)

configure() {
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DRAGG_BUILD_TESTS=ON -DRAGG_BUILD_BENCH=ON "$@" >> "$out/build.log" 2>&1
}
# GoogleTest: the system's, else built from the sources Debian ships.
if ! configure; then
  echo "configure failed (GoogleTest missing?): building it from /usr/src/googletest"
  rm -rf "$build"
  gsrc=/usr/src/googletest
  [ -d "$gsrc" ] || gsrc=$here/.gtest-src # a copy carried to the machine
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
start=$(date +%s)
bash "$here/kernels/gpu_stage.sh" "$build" "$stage" >> "$out/build.log" 2>&1 ||
  { tail -30 "$out/build.log"; exit 1; }
echo "build: $(( $(date +%s) - start )) s"
OUT=$out exec bash "$here/kernels/gpu_run.sh" "$stage"
