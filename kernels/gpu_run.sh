#!/usr/bin/env bash
# Runs what kernels/gpu_stage.sh built, on a machine with a GPU, in one go:
#  1. at once, side by side (the GPU is shared; nothing here is timed): the GPU
#     suites, the NCCL suites (one rank) and the preload shim on a real
#     ncclAllReduce, the Python GPU tests (torch CUDA, CuPy, the hook's NCCL path),
#     and compute-sanitizer (memcheck, racecheck, synccheck, initcheck) over the
#     solver suite and a subset of the backend suite;
#  2. then alone: the CUDA benchmark and the PyTorch peers on the GPU.
# Logs go to $OUT (or ./gpu_run_out; the suites' logs packed into logs.tgz at
# the end); a summary is printed last.
# Usage: kernels/gpu_run.sh [stage dir (build-gpu-stage)]
# Knobs: RAGG_PHASE1_TIMEOUT (s, each job of step 1), RAGG_SKIP (any of: nccl pytest
#        solver), RAGG_BENCH_ARGS, RAGG_BENCH_TIMEOUT, RAGG_BENCH2_ARGS (a second benchmark
#        run; empty: none), RAGG_PEERS_ARGS, RAGG_PEERS_TIMEOUT (0: no peers run),
#        RAGG_SANITIZERS (tools, default all four), RAGG_SANITIZER_FILTER (the backend
#        suite's subset), RAGG_SANITIZER_SOLVER_FILTER (the solver suite's, default all), RAGG_NCU ("rule:n:dtype ..." configurations whose kernels
#        Nsight Compute times, one ncu run each: per-phase time of a call).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
stage=$(cd "${1:-$here/build-gpu-stage}" && pwd)
out=${OUT:-$here/gpu_run_out}
mkdir -p "$out"
start=$(date +%s)
el() { echo $(( $(date +%s) - start )); }
t1=${RAGG_PHASE1_TIMEOUT:-200}

# cuBLAS and NCCL: the system's, else the toolkit's, else the wheels beside torch
findlib() {
  local p
  p=$(ldconfig -p 2>/dev/null | grep -m1 "$1 " | sed 's/.*=> //')
  [ -n "$p" ] && { echo "$p"; return; }
  find /usr/local/cuda*/ /usr/lib/x86_64-linux-gnu /opt -name "$1" 2>/dev/null | head -1
}
blas=$(findlib libcublas.so.13)
nccl=$(findlib libnccl.so.2)
export LD_LIBRARY_PATH=$stage/lib${blas:+:$(dirname "$blas")}${nccl:+:$(dirname "$nccl")}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
{
  nvidia-smi -L
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem --format=csv
  echo "staged from: $(cat "$stage/commit")"
  echo "cublas: $blas"; echo "nccl: $nccl"; date -u
  for b in "$stage"/bin/*; do ldd "$b" | grep "not found" | sed "s|^|$(basename "$b"): |"; done
} > "$out/device.txt" 2>&1
cat "$out/device.txt"

summary() {  # gtest's verdict lines, and the failures with their context
  grep -E "^\[==========\]|^\[  PASSED  \]|^\[  SKIPPED \] [A-Za-z]|^\[  FAILED  \] [A-Za-z]" "$1"
}
run() {  # name timeout command...: runs it with its log in $out/name.log, notes rc and time
  local name=$1 limit=$2 s=$(date +%s)
  shift 2
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  echo "$name: rc=$? in $(( $(date +%s) - s )) s" >> "$out/rc.txt"
}
: > "$out/rc.txt"

skip=" ${RAGG_SKIP:-} "
# --- 1. correctness, side by side
( [[ $skip == *" solver "* ]] || run test_cuda_solver "$t1" "$stage/bin/test_cuda_solver"
  run test_cuda_backend "$t1" "$stage/bin/test_cuda_backend" ) &
[[ $skip == *" nccl "* ]] || ( run test_nccl_algorithm "$t1" "$stage/bin/test_nccl_algorithm"
  run test_nccl_collectives 60 "$stage/bin/test_nccl_collectives"
  run test_nccl_preload 60 env LD_PRELOAD="$stage/lib/librobustagg_nccl_preload.so" \
    RAGG_RULE=median RAGG_F=0 RAGG_MODE=sharded RAGG_MIN_BYTES=4096 RAGG_DEBUG=INFO \
    "$stage/bin/test_nccl_preload" ) &
[[ $skip == *" pytest "* ]] || ( cd "$here/python" && run pytest_gpu "$t1" env PYTHONPATH="$here/python" \
    RAGG_LIBRARY="$stage/lib/librobustagg.so.0.1" \
    RAGG_NCCL_LIBRARY="$stage/lib/librobustagg_nccl.so.0.1" PYTHONUNBUFFERED=1 \
    python3 -m pytest -q -rs -p no:cacheprovider tests/test_aggregate.py tests/test_torch_nccl.py \
    -k "cuda or cupy or nccl" ) &
tools=${RAGG_SANITIZERS:-all}
[ "$tools" = all ] && tools="memcheck racecheck synccheck initcheck"
if command -v compute-sanitizer > /dev/null 2>&1; then
  for tool in $tools; do
    extra=""
    [ "$tool" = racecheck ] && extra="--racecheck-report all"
    ( [[ $skip == *" solver "* ]] || run "san_${tool}_solver" "$t1" compute-sanitizer --tool "$tool" \
        $extra --error-exitcode 9 "$stage/bin/test_cuda_solver" \
        --gtest_filter="${RAGG_SANITIZER_SOLVER_FILTER:-*}"
      run "san_${tool}_backend" "$t1" compute-sanitizer --tool "$tool" $extra --error-exitcode 9 \
        "$stage/bin/test_cuda_backend" \
        --gtest_filter="${RAGG_SANITIZER_FILTER:-*Graph*:*Errors*:*CenteredClipping*:*PreSteps*:*Repeated*}" ) &
  done
else
  echo "compute-sanitizer: not found" >> "$out/rc.txt"
fi
wait
echo "step 1 done after $(el) s"

# --- 2. timings, alone on the GPU (line-buffered, so a timeout keeps the rows so far)
timeout "${RAGG_BENCH_TIMEOUT:-150}" stdbuf -oL "$stage/bin/ragg_bench_cuda" ${RAGG_BENCH_ARGS:-} \
  > "$out/bench.txt" 2> "$out/bench.err"
echo "bench: rc=$? after $(el) s" >> "$out/rc.txt"
if [ -n "${RAGG_BENCH2_ARGS:-}" ]; then
  timeout "${RAGG_BENCH_TIMEOUT:-150}" stdbuf -oL "$stage/bin/ragg_bench_cuda" $RAGG_BENCH2_ARGS \
    > "$out/bench2.txt" 2>> "$out/bench.err"
  echo "bench2: rc=$? after $(el) s" >> "$out/rc.txt"
fi
if [ "${RAGG_PEERS_TIMEOUT:-90}" != 0 ]; then
  PYTHONPATH="$here/python" RAGG_LIBRARY="$stage/lib/librobustagg.so.0.1" PYTHONUNBUFFERED=1 \
    timeout "${RAGG_PEERS_TIMEOUT:-90}" python3 "$here/bench/cuda/torch_peers.py" ${RAGG_PEERS_ARGS:-} \
    > "$out/peers.txt" 2>&1
  echo "peers: rc=$? after $(el) s" >> "$out/rc.txt"
fi
# per-kernel times of one configuration's calls (3 timed calls after the bench's warm-up)
for cfg in ${RAGG_NCU:-}; do
  IFS=: read -r rule nn dt <<< "$cfg"
  timeout 60 ncu --metrics gpu__time_duration.sum --csv --log-file "$out/ncu_$cfg.csv" \
    "$stage/bin/ragg_bench_cuda" --rules "$rule" --ns "$nn" --dtypes "$dt" --reps 3 --no-baselines \
    > /dev/null 2>&1
  [ -f "$out/ncu_$cfg.csv" ] || { echo "== $cfg: ncu wrote nothing" >> "$out/ncu.txt"; continue; }
  python3 - "$out/ncu_$cfg.csv" "$cfg" >> "$out/ncu.txt" <<'PY'
import csv, statistics, sys
rows = [r for r in csv.DictReader(l for l in open(sys.argv[1]) if l.startswith('"'))
        if r.get("Metric Name") == "gpu__time_duration.sum"]
per = {}
for r in rows:
    scale = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}.get(r["Metric Unit"], 1.0)
    per.setdefault(r["Kernel Name"][:60], []).append(float(r["Metric Value"].replace(",", "")) * scale)
print(f"== {sys.argv[2]}: kernel, launches, median us")
for k, v in sorted(per.items(), key=lambda kv: -statistics.median(kv[1]) * len(kv[1])):
    print(f"  {k:<60} {len(v):5d} {statistics.median(v):10.1f}")
PY
  rm -f "$out/ncu_$cfg.csv"
done

# --- summary
echo "=== rc"; cat "$out/rc.txt"
for t in test_cuda_solver test_cuda_backend test_nccl_algorithm test_nccl_collectives test_nccl_preload; do
  [ -f "$out/$t.log" ] || continue
  echo "=== $t"; summary "$out/$t.log"
  grep -B2 -A10 -m5 -E "Failure$|error: " "$out/$t.log" | head -40
done
echo "=== pytest"; [ -f "$out/pytest_gpu.log" ] && tail -15 "$out/pytest_gpu.log"
echo "=== sanitizers"
for f in "$out"/san_*.log; do
  echo "$(basename "$f" .log): $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$f" | tr '\n' ' ')"
done
[ -f "$out/ncu.txt" ] && { echo "=== ncu"; cat "$out/ncu.txt"; }
echo "=== total $(el) s"
# the suites' and sanitizers' logs in one file (a lent machine returns few files)
(cd "$out" && tar czf logs.tgz -- *.log && rm -f -- *.log)
