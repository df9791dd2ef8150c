"""robustagg on CUDA tensors against the PyTorch ways of writing the same rules,
in one run on one GPU: torch.median(dim=0), a torch.sort-based trimmed mean and
a torch.cdist-based Krum, with x.mean(0) and a device-to-device copy as the
floor. fp32 inputs of --mib MiB (two buffers rotated, beyond L2), CUDA events,
median of --reps after a warm-up. GB/s counts one read of the input and one
write of the output; %copy is that over the copy's (read + write) rate.

usage: python3 bench/cuda/torch_peers.py [--mib 256] [--reps 10] [--ns 8,32,64,256,1024]
       (PYTHONPATH=python, RAGG_LIBRARY=<a librobustagg built with its CUDA backend>)
"""
import argparse
import statistics

import torch

import robustagg


def time_ms(fn, bufs, reps):
    for i in range(2):
        fn(bufs[i % len(bufs)])
    torch.cuda.synchronize()
    times = []
    for i in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn(bufs[i % len(bufs)])
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def torch_trimmed_mean(x, f):
    s = torch.sort(x, dim=0).values
    return s[f:x.shape[0] - f].mean(0)


def torch_krum(x, f):
    n = x.shape[0]
    d2 = torch.cdist(x, x) ** 2
    scores = torch.topk(d2, n - f - 1, dim=1, largest=False).values.sum(1)  # self (0) included
    return x[torch.argmin(scores)]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mib", type=float, default=256)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--ns", default="8,32,64,256,1024")
    a = p.parse_args()
    if not torch.cuda.is_available() or not robustagg.cuda_available():
        raise SystemExit("needs a CUDA device and a librobustagg built with its CUDA backend")
    src = torch.empty(1 << 28, dtype=torch.float32, device="cuda").normal_()
    dst = torch.empty_like(src)
    cms = time_ms(lambda s: dst.copy_(s), [src], a.reps)
    copy = 2 * src.numel() * 4 / (cms * 1e6)
    del src, dst
    print(f"# device: {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"robustagg {robustagg.version()}")
    print(f"# copy: 1024 MiB device-to-device in {cms * 1e3:.1f} us = {copy:.1f} GB/s")
    print(f"{'rule':<14}{'impl':<16}{'n':>6}{'d':>10}{'time_us':>11}{'GB/s':>9}{'%copy':>7}"
          f"{'robustagg x':>13}")
    for n in [int(v) for v in a.ns.split(",")]:
        d = int(a.mib * 2**20 / 4 / n)
        bufs = [torch.randn(n, d, device="cuda") for _ in range(2)]
        gbs = lambda ms: (n * d + d) * 4 / (ms * 1e6)
        f = n // 4
        cases = [
            ("mean", 0, "torch mean", lambda x: x.mean(0)),
            ("median", 0, "torch.median", lambda x: torch.median(x, dim=0).values),
            ("trimmed_mean", f, "torch.sort", lambda x: torch_trimmed_mean(x, f)),
            ("krum", (n - 3) // 2, "torch.cdist", lambda x: torch_krum(x, (n - 3) // 2)),
        ]
        for rule, rf, peer, fn in cases:
            try:
                ours = time_ms(lambda x: robustagg.aggregate(x, rule=rule, f=rf), bufs, a.reps)
            except robustagg.RaggError as e:
                print(f"{rule:<14}{'robustagg':<16}{n:>6}{d:>10}  failed: {e}")
                continue
            print(f"{rule:<14}{'robustagg':<16}{n:>6}{d:>10}{ours * 1e3:>11.1f}"
                  f"{gbs(ours):>9.1f}{100 * gbs(ours) / copy:>7.1f}")
            try:
                theirs = time_ms(fn, bufs, a.reps)
            except torch.cuda.OutOfMemoryError:
                print(f"{rule:<14}{peer:<16}{n:>6}{d:>10}  out of memory")
                torch.cuda.empty_cache()
                continue
            print(f"{rule:<14}{peer:<16}{n:>6}{d:>10}{theirs * 1e3:>11.1f}"
                  f"{gbs(theirs):>9.1f}{100 * gbs(theirs) / copy:>7.1f}{theirs / ours:>12.1f}x",
                  flush=True)
        del bufs
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
