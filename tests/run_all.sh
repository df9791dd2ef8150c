#!/usr/bin/env bash
# Builds robustagg and runs every test, on a fresh Debian machine with the
# CUDA toolkit: installs what the tests need (Debian packages, pinned PyPI
# packages), builds with CUDA where nvcc exists, runs CTest, then builds the
# CPU library with ASan + UBSan and runs the C test suites again.
# Run from the repository root, as root (or with sudo for apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq cmake g++ libgtest-dev openmpi-bin libopenmpi-dev python3-pip >/dev/null
python3 -m pip install -q -r python/requirements-test.txt
JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRAGG_ENABLE_CUDA=OFF -DRAGG_SANITIZE=ON \
      -DRAGG_BUILD_BENCH=OFF
cmake --build build-asan -j "$JOBS"
ctest --test-dir build-asan --output-on-failure -j "$JOBS" -LE slow
