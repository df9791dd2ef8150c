#!/usr/bin/env bash
# Builds the GPU suites, the NCCL suites, the preload shim and the CUDA
# benchmark for sm_90 on this machine (no GPU needed), and copies them with the
# libraries they load into one folder, for kernels/gpu_run.sh on a machine that
# has a GPU (so the GPU's time goes to running, not compiling).
# Usage: kernels/gpu_stage.sh [build dir (build-cuda)] [stage dir (build-gpu-stage)]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-cuda}
stage=${2:-$here/build-gpu-stage}
[ -f "$build/CMakeCache.txt" ] ||
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DRAGG_BUILD_TESTS=ON -DRAGG_BUILD_BENCH=ON
bins="test_cuda_solver test_cuda_backend test_nccl_algorithm test_nccl_collectives test_nccl_preload"
cmake --build "$build" -j"$(nproc)" --target $bins ragg_bench_cuda robustagg robustagg_nccl \
  robustagg_nccl_preload
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/lib"
for b in $bins; do cp "$build/tests/$b" "$stage/bin/"; done
cp "$build/bench/cuda/ragg_bench_cuda" "$stage/bin/"
# under the names the binaries ask for (their sonames), as plain files
cp -L "$build/host/librobustagg.so.0.1" "$stage/lib/librobustagg.so.0.1"
cp -L "$build/host/dist/librobustagg_nccl.so.0.1" "$stage/lib/librobustagg_nccl.so.0.1"
cp -L "$build/host/dist/librobustagg_nccl_preload.so" "$stage/lib/"
git -C "$here" rev-parse HEAD > "$stage/commit"
git -C "$here" status --short --untracked-files=no >> "$stage/commit"
du -sh "$stage"
