"""Robust all-reduce over torch.distributed: python -m robustagg.bench_allreduce

Spawns --world processes (gloo, CPU tensors, one thread each) and times, on
the same buffers in the same run: torch.distributed.all_reduce (the engine's
own collective, SUM), robustagg.torch.robust_all_reduce (the library's
algorithm with torch.distributed as its transport) in sharded and replicated
mode, and the DDP hook's torch.distributed path (the one CUDA buckets take:
all_to_all_single + robustagg.aggregate + all_gather, coordinate-wise rules
only), for each rule and size. Prints, like nccl-tests, the median time of
the slowest rank, algbw = bytes / time and busbw = algbw * 2 (P-1) / P,
and each row's time over all_reduce's. More ranks than cores makes every
figure noise: keep --world at or below the core count for figures to quote.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time


def _time(fn, repeat, dist):
    import torch

    times = []
    for _ in range(repeat + 1):  # the first run warms up
        dist.barrier()
        t0 = time.perf_counter()
        fn()
        t = time.perf_counter() - t0
        slowest = torch.tensor([t], dtype=torch.float64)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        times.append(float(slowest))
    return statistics.median(times[1:])


def _worker(rank, world, args, store, queue):
    import torch
    import torch.distributed as dist

    import robustagg
    import robustagg.torch as rt

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method="file://" + store, rank=rank, world_size=world)
    try:
        rows = []
        for mib in args.sizes:
            count = mib * (1 << 20) // 4
            gen = torch.Generator().manual_seed(rank)
            x = torch.randn(count, generator=gen)
            buf = x.clone()
            ref = _time(lambda: dist.all_reduce(buf), args.repeat, dist)
            rows.append((mib, "all_reduce (sum)", "-", ref, ref))
            for rule in args.rules:
                f = 1 if world >= 3 else 0
                if world < robustagg.min_inputs(rule, f):
                    continue
                for mode in ("sharded", "replicated"):
                    def robust():
                        buf.copy_(x)
                        rt.robust_all_reduce(buf, rule=rule, f=f, mode=mode)
                    t = _time(robust, args.repeat, dist)
                    rows.append((mib, f"robust_all_reduce {mode}", rule, t, ref))
                state = rt.RobustHookState(rule=rule, f=f, mode="sharded", record_history=False)
                if state._collectives_mode() == "sharded":
                    group = dist.group.WORLD

                    def collectives():
                        rt._sharded(state, group, world, rank, x, 0, 0).wait()
                    t = _time(collectives, args.repeat, dist)
                    rows.append((mib, "torch collectives + aggregate", rule, t, ref))
        if rank == 0:
            queue.put(rows)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m robustagg.bench_allreduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", type=int, default=2, help="processes (2)")
    p.add_argument("--sizes", default="4,16,64", help="MiB per rank, comma-separated (4,16,64)")
    p.add_argument("--rules", default="median,trimmed_mean,geomed",
                   help="comma-separated rules (median,trimmed_mean,geomed)")
    p.add_argument("--repeat", type=int, default=10, help="timed runs per row (10)")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.rules = [r for r in args.rules.split(",") if r]

    import torch.multiprocessing as mp

    import robustagg

    print(f"robustagg {robustagg.version()} ({robustagg.library_path()})")
    print(f"torch.distributed gloo, world {args.world}, {os.cpu_count()} logical CPUs, "
          f"float32, median of {args.repeat} (slowest rank)")
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(args.world, args, os.path.join(tmp, "store"), queue),
                 nprocs=args.world, join=True)
    rows = queue.get()
    P = args.world
    print(f"{'MiB':>5}  {'collective':32} {'rule':14} {'time ms':>9} {'algbw GB/s':>11} "
          f"{'busbw GB/s':>11} {'x all_reduce':>13}")
    for mib, what, rule, t, ref in rows:
        algbw = mib * (1 << 20) / t / 1e9
        print(f"{mib:>5}  {what:32} {rule:14} {t * 1e3:9.2f} {algbw:11.2f} "
              f"{algbw * 2 * (P - 1) / P:11.2f} {t / ref:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
