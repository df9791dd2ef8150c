#!/usr/bin/env bash
# The Byzantine training demo on a fresh Debian machine: installs what it
# needs, builds librobustagg, installs the Python package (pip install ./python) and runs
# `python3 -m robustagg.demo` (arguments are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq cmake g++ python3-pip >/dev/null
python3 -m pip install -q -r python/requirements-minimal.txt
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRAGG_BUILD_TESTS=OFF -DRAGG_BUILD_BENCH=OFF >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
python3 -m pip install -q ./python     # bundles build/host/librobustagg.so
RAGG_LIBRARY="$PWD/build/host/librobustagg.so" python3 -m robustagg.demo "$@"
