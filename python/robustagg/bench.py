"""Peer benchmark: python -m robustagg.bench

Times robustagg against ByzFL (PyPI byzfl, on NumPy and on torch inputs, in
separate rows), plain NumPy implementations and torch baselines
(torch.median, a torch.sort trimmed mean, a torch.cdist Krum; on the GPU too
when one is present), all on the same inputs in the same run: n = 64,
d = 65536, f = 8, float32 by default; Brute and SMEA at f = 2 (C(64, 8)
subsets is beyond any brute force). Prints the median time of each, the
speed-up of robustagg over it (against robustagg runs taken in blocks that
alternate with the peer's, so that a shared machine's changing load hits both
sides of the ratio), and whether the results agree; where a peer's
definition differs (ByzFL's Krum averages n-f-1 neighbours, its geometric
median stops after 3 iterations from zero, its CAF and SMEA take one power
step from a random vector, torch.median returns the lower middle value) the
table says so instead of comparing. Peers that are not installed are listed
as skipped.

Pre-aggregation rows (krum+nnm, median+arc, ...) put NNM, ARC or bucketing
(bucket size 2) in front of Krum and of the median; their robustagg row also
gives the cost over the same rule without the pre-step, and ByzFL runs the same
chain through its RobustAggregator. ByzFL's ARC clips the array it is given in
place, so each of its ARC calls gets a fresh copy (included in its time); its
bucketing draws its own random permutation, so only the times compare.
"""

import argparse
import importlib.util
import itertools
import os
import platform
import statistics
import sys
import time

import numpy as np

import robustagg

# ------------------------------------------------------------------ NumPy peers


def np_median(x, f):
    return np.median(x, 0)


def np_trimmed_mean(x, f):
    return np.sort(x, 0)[f:len(x) - f].mean(0)


def np_meamed(x, f):
    med = np.median(x, 0)
    idx = np.argpartition(np.abs(x - med), len(x) - f - 1, axis=0)[: len(x) - f]
    return np.take_along_axis(x, idx, 0).mean(0)


def _sqdist(x):
    g = (x @ x.T).astype(np.float64)
    dg = np.diag(g)
    return np.maximum(dg[:, None] + dg[None, :] - 2 * g, 0)


def _krum_scores(x, f):
    d2 = _sqdist(x)
    n = len(x)
    return np.sort(d2 + np.diag(np.full(n, np.inf)), 1)[:, : n - f - 2].sum(1)


def np_krum(x, f):
    return x[np.argmin(_krum_scores(x, f))]


def np_multi_krum(x, f):
    return x[np.argsort(_krum_scores(x, f), kind="stable")[: len(x) - f]].mean(0)


def np_geomed(x, f, nu=1e-8, max_iters=1000, tol=1e-12):
    x64 = x.astype(np.float64)
    d2 = _sqdist(x)
    z = x64[np.argmin(np.sqrt(d2).sum(1))]  # the medoid
    prev = None
    for _ in range(max_iters):
        dist = np.linalg.norm(x64 - z, axis=1)
        obj = dist.sum()
        if prev is not None and abs(prev - obj) <= tol * obj:
            break
        prev = obj
        w = 1.0 / np.maximum(nu, dist)
        z = (w[:, None] * x64).sum(0) / w.sum()
    return z.astype(x.dtype)


def np_centered_clip(x, f, tau=100.0, iters=1):
    v = np.zeros(x.shape[1], np.float64)
    for _ in range(iters):
        diff = x - v
        scale = np.minimum(1.0, tau / np.maximum(np.linalg.norm(diff, axis=1), 1e-300))
        v = v + (diff * scale[:, None]).mean(0)
    return v.astype(x.dtype)


def np_monna(x, f, trusted=0):
    dist = ((x - x[trusted]) ** 2).sum(1)
    return x[np.argsort(dist, kind="stable")[: len(x) - f]].mean(0)


def np_brute(x, f):
    d2 = _sqdist(x)
    n = len(x)
    best, best_diam = None, np.inf
    for keep in itertools.combinations(range(n), n - f):  # lexicographic: ties to the first
        keep = np.asarray(keep)
        diam = d2[np.ix_(keep, keep)].max()
        if diam < best_diam:
            best, best_diam = keep, diam
    return x[best].mean(0)


def np_mean(x, f):
    return x.mean(0)


# ------------------------------------------------------------------ torch peers

def torch_median(x, f):
    import torch

    return torch.median(x, 0).values


def torch_trimmed_mean(x, f):
    import torch

    return torch.sort(x, 0).values[f:x.shape[0] - f].mean(0)


def torch_krum(x, f):
    import torch

    n = x.shape[0]
    d2 = torch.cdist(x, x) ** 2
    d2.fill_diagonal_(float("inf"))
    scores = torch.sort(d2, 1).values[:, : n - f - 2].sum(1)
    return x[torch.argmin(scores)]


# ------------------------------------------------------------------ the table of work

# rule, f, robustagg options, label suffix, numpy peer, torch peer,
# (byzfl class name, kwargs, "agree" or the definition difference)
def cases(f, brute_f):
    return [
        ("mean", f, {}, "", np_mean, None, ("Average", {}, "agree")),
        ("median", f, {}, "", np_median, (torch_median, "lower middle for even n"),
         ("Median", {}, "agree")),
        ("trimmed_mean", f, {}, "", np_trimmed_mean, (torch_trimmed_mean, "agree"),
         ("TrMean", {"f": f}, "agree")),
        ("meamed", f, {}, "", np_meamed, None, ("Meamed", {"f": f}, "agree")),
        ("krum", f, {}, "", np_krum, (torch_krum, "agree"),
         ("Krum", {"f": f}, "ByzFL scores by the mean of n-f-1 neighbours")),
        ("multi_krum", f, {}, "", np_multi_krum, None,
         ("MultiKrum", {"f": f}, "ByzFL scores by the mean of n-f-1 neighbours")),
        # the Krum family with fp32 runs in the Gram pass (distances="gram_fp32"),
        # the accuracy class of the fp32 peers (torch.cdist, ByzFL on torch)
        ("krum", f, {"distances": "gram_fp32"}, " fp32", np_krum, (torch_krum, "agree"),
         ("Krum", {"f": f}, "ByzFL scores by the mean of n-f-1 neighbours")),
        ("multi_krum", f, {"distances": "gram_fp32"}, " fp32", np_multi_krum, None,
         ("MultiKrum", {"f": f}, "ByzFL scores by the mean of n-f-1 neighbours")),
        ("bulyan", f, {}, "", None, None, None),
        ("geomed", f, {}, "", np_geomed, None,
         ("GeometricMedian", {}, "ByzFL: 3 iterations from 0, nu = 0.1")),
        ("geomed", f, {"max_iters": 3}, " (3 it)", None, None,
         ("GeometricMedian", {"T": 3}, "same count; ByzFL starts at 0, nu = 0.1")),
        ("centered_clip", f, {}, "", np_centered_clip, None,
         ("CenteredClipping", {}, "agree")),
        ("monna", f, {}, "", np_monna, None, ("MoNNA", {"f": f}, "agree")),
        ("caf", f, {}, "", None, None,
         ("CAF", {"f": f}, "ByzFL: one power step from a random vector")),
        ("brute", brute_f, {}, "", np_brute, None, ("MDA", {"f": brute_f}, "agree")),
        ("smea", brute_f, {}, "", None, None,
         ("SMEA", {"f": brute_f}, "ByzFL: one power step from a random vector")),
    ] + pre_cases(f)


# Pre-steps: the robustagg options, the label suffix, ByzFL's pre-aggregator chain.
PRE_STEPS = (
    ({"mix": "nnm"}, "+nnm", lambda f: [("NNM", {"f": f})]),
    ({"adaptive_clip": True}, "+arc", lambda f: [("ARC", {"f": f})]),
    ({"adaptive_clip": True, "mix": "nnm"}, "+arc+nnm",
     lambda f: [("ARC", {"f": f}), ("NNM", {"f": f})]),
    ({"mix": "bucketing", "bucket_size": 2, "seed": 1}, "+bucketing",
     lambda f: [("Bucketing", {"s": 2})]),
)


def pre_cases(f):
    out = []
    for rule, peer_rule, peer_kwargs, rule_note in (
            ("krum", "Krum", {"f": f}, "ByzFL's Krum scores by the mean of n-f-1 neighbours"),
            ("median", "Median", {}, "agree")):
        for opts, suffix, chain in PRE_STEPS:
            note = rule_note
            if "bucket_size" in opts:
                note = "ByzFL draws its own random buckets"
            out.append((rule, f, opts, suffix, None, None,
                        (("chain", peer_rule, peer_kwargs, chain(f)), {}, note)))
    return out


def byzfl_callable(byzfl, cls, kwargs):
    """A ByzFL aggregator (a class name) or a pre-aggregation chain, as fn(inputs)."""
    if isinstance(cls, tuple):
        from byzfl.fed_framework.robust_aggregator import RobustAggregator

        _, rule, rule_kwargs, chain = cls
        agg = RobustAggregator({"name": rule, "parameters": rule_kwargs},
                               [{"name": p, "parameters": kw} for p, kw in chain])
        if any(p == "ARC" for p, _ in chain):  # ARC clips its input in place
            return lambda inp: agg.aggregate_vectors(inp.copy() if hasattr(inp, "copy")
                                                     else inp.clone())
        return agg.aggregate_vectors
    if cls == "CenteredClipping":  # it keeps its centre between calls
        return lambda inp: getattr(byzfl, cls)(**kwargs)(inp)
    return getattr(byzfl, cls)(**kwargs)


# ------------------------------------------------------------------ timing

def timed(fn, sync=None):
    """(wall time of one fn() call, its result), the device synchronised."""
    t = time.perf_counter()
    out = fn()
    if sync:
        sync()
    return time.perf_counter() - t, out


def time_call(fn, repeat, budget_s, sync=None):
    """Median wall time of fn() over up to `repeat` runs (fewer once budget_s is spent)."""
    out = timed(fn, sync)[1]  # warm-up (allocations, first-touch, lazy imports)
    times = []
    start = time.perf_counter()
    for _ in range(repeat):
        t, out = timed(fn, sync)
        times.append(t)
        if time.perf_counter() - start > budget_s:
            break
    return statistics.median(times), out


def time_against(fn, ref_fn, repeat, budget_s, sync=None, rounds=3):
    """Median wall times of fn() and of ref_fn() (robustagg's call), taken in
    alternating blocks: `rounds` blocks of each, up to `repeat` runs of each in
    all (fewer once budget_s is spent, never fewer than one block each). On a
    shared machine a change of load then hits both sides of the ratio alike.
    Returns (fn's median, fn's last result, ref_fn's median)."""
    out = timed(fn, sync)[1]  # warm-up
    timed(ref_fn, sync)
    per = max(1, -(-repeat // rounds))
    times, ref_times = [], []
    start = time.perf_counter()
    for _ in range(rounds):
        for _ in range(per):
            ref_times.append(timed(ref_fn, sync)[0])
        for _ in range(per):
            t, out = timed(fn, sync)
            times.append(t)
        if time.perf_counter() - start > budget_s:
            break
    return statistics.median(times), out, statistics.median(ref_times)


def to_numpy(v):
    if hasattr(v, "detach"):
        return v.detach().float().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def compare(a, b):
    a = to_numpy(a).astype(np.float64)
    b = to_numpy(b).astype(np.float64)
    err = np.abs(a - b) / (1e-3 + np.abs(b))
    worst = float(err.max()) if err.size else 0.0
    return ("yes" if worst <= 1e-3 else f"NO (rel. err {worst:.1e})"), worst


# ------------------------------------------------------------------ main

def machine():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m robustagg.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--d", type=int, default=65536)
    p.add_argument("--f", type=int, default=8)
    p.add_argument("--brute-f", type=int, default=2, help="f for brute and smea (2)")
    p.add_argument("--repeat", type=int, default=21,
                   help="timed runs per row (21; a shared machine's noise needs many runs "
                        "of the millisecond rows, the budget caps the slow ones)")
    p.add_argument("--budget", type=float, default=3.0,
                   help="stop repeating a row after this many seconds (3)")
    p.add_argument("--rules", default="all", help="comma-separated rules, or all")
    p.add_argument("--slow", action="store_true",
                   help="also run ByzFL's SMEA (a 16 MiB copy per subset: minutes)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    have_torch = importlib.util.find_spec("torch") is not None
    have_byzfl = importlib.util.find_spec("byzfl") is not None
    torch = None
    if have_torch:
        import torch
    byzfl = None
    if have_byzfl:
        try:
            import byzfl
        except Exception as e:  # byzfl imports torch and more
            print(f"byzfl: installed but failed to import ({e}): skipped")
            have_byzfl = False
    cuda = have_torch and torch.cuda.is_available()
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.n, args.d)).astype(np.float32)
    xt = torch.from_numpy(x) if have_torch else None
    xc = xt.cuda() if cuda else None

    print(f"robustagg {robustagg.version()} ({robustagg.library_path()})")
    print(f"machine: {machine()}")
    print(f"inputs: n = {args.n}, d = {args.d}, f = {args.f} (brute, smea: f = {args.brute_f}), "
          f"float32, {x.nbytes / 2**20:.0f} MiB; median of up to {args.repeat} runs")
    print(f"numpy {np.__version__}; torch {torch.__version__ if have_torch else 'not installed'}"
          f"{' (CUDA ' + torch.cuda.get_device_name() + ')' if cuda else ''}; "
          f"byzfl {getattr(byzfl, '__version__', 'installed') if have_byzfl else 'not installed'}")
    missing = [name for name, ok in (("byzfl", have_byzfl), ("torch", have_torch)) if not ok]
    if missing:
        print("skipped peers (not installed): " + ", ".join(missing) +
              "  -> pip install -r python/requirements-test.txt")
    print()

    wanted = None if args.rules == "all" else set(args.rules.split(","))
    header = f"{'rule':<19}{'implementation':<22}{'median ms':>11}{'robustagg x':>13}  agrees"
    print(header)
    print("-" * (len(header) + 30))
    rows = []
    plain_times = {}
    floor = {}  # DESIGN §3 floor of the Gram-space rules at larger n: SYRK alone + one read
    gram_rules = ("krum", "multi_krum", "geomed", "centered_clip", "monna", "caf", "brute")
    for rule, f, opts, suffix, np_peer, torch_peer, byz in cases(args.f, args.brute_f):
        label = rule + suffix
        if wanted and rule not in wanted and label not in wanted:
            continue
        if args.n < robustagg.min_inputs(rule, f):
            print(f"{label:<19}(needs n >= {robustagg.min_inputs(rule, f)})")
            continue
        if "bucket_size" in opts and -(-args.n // opts["bucket_size"]) < \
                robustagg.min_inputs(rule, f):
            print(f"{label:<19}(needs n/{opts['bucket_size']} >= "
                  f"{robustagg.min_inputs(rule, f)} buckets)")
            continue
        def ra_call(rule=rule, f=f, opts=opts):
            return robustagg.aggregate(x, rule=rule, f=f, **opts)

        t_ra, ref = time_call(ra_call, args.repeat, args.budget)
        is_pre = any(k in opts for k in ("mix", "adaptive_clip"))
        if not opts:
            plain_times[(rule, f)] = t_ra

        def emit(impl, t, agree, t_ref=None):
            # the ratio against robustagg's runs interleaved with this row's
            speed = "" if t is None else f"{t / (t_ref or t_ra):.1f}x"
            ms = "skipped" if t is None else f"{1e3 * t:.2f}"
            print(f"{label:<19}{impl:<22}{ms:>11}{speed:>13}  {agree}", flush=True)
            rows.append((label, impl, t, speed, agree))

        cost = ""
        if is_pre:
            if (rule, f) not in plain_times:
                plain_times[(rule, f)] = time_call(
                    lambda: robustagg.aggregate(x, rule=rule, f=f), args.repeat, args.budget)[0]
            cost = f"pre-step cost: {t_ra / plain_times[(rule, f)]:.2f}x {rule} alone"
        elif rule in gram_rules and args.n > 16:
            if not floor:
                floor["syrk"] = time_call(lambda: x @ x.T, args.repeat, args.budget)[0]
                floor["read"] = time_call(lambda: robustagg.aggregate(x, rule="mean"),
                                          args.repeat, args.budget)[0]
                print(f"{'(floor)':<19}{'numpy x @ x.T':<22}{1e3 * floor['syrk']:>11.2f}"
                      f"{'':>13}  OpenBLAS SYRK alone")
                print(f"{'(floor)':<19}{'robustagg mean':<22}{1e3 * floor['read']:>11.2f}"
                      f"{'':>13}  one read of the input")
            cost = f"{t_ra / (floor['syrk'] + floor['read']):.2f}x SYRK + one read"
        emit("robustagg", t_ra, cost)
        if have_torch and rule in ("median", "krum", "geomed") and not opts:
            t, out, t_ref = time_against(lambda: robustagg.aggregate(xt, rule=rule, f=f, **opts),
                                         ra_call, args.repeat, args.budget)
            emit("robustagg (torch)", t, compare(out, ref)[0], t_ref)
        if np_peer is not None:
            t, out, t_ref = time_against(lambda: np_peer(x, f), ra_call, args.repeat, args.budget)
            emit("numpy", t, compare(out, ref)[0], t_ref)
        if torch_peer is not None and have_torch:
            fn, note = torch_peer
            t, out, t_ref = time_against(lambda: fn(xt, f), ra_call, args.repeat, args.budget)
            emit("torch cpu", t, compare(out, ref)[0] if note == "agree" else f"n/a: {note}",
                 t_ref)
            if cuda:
                t, out, t_ref = time_against(lambda: fn(xc, f), ra_call, args.repeat, args.budget,
                                             sync=torch.cuda.synchronize)
                emit("torch cuda", t, compare(out, ref)[0] if note == "agree" else f"n/a: {note}",
                     t_ref)
        if byz is not None:
            cls, kwargs, note = byz
            if not have_byzfl:
                emit("byzfl", None, "byzfl not installed")
                continue
            if cls == "SMEA" and not args.slow:
                emit("byzfl", None, f"skipped: C({args.n},{f}) subsets x a 16 MiB copy; --slow")
                continue
            for kind, inp in (("numpy", x), ("torch", xt)):
                if inp is None:
                    continue
                agg = byzfl_callable(byzfl, cls, kwargs)

                def fn(agg=agg, inp=inp):
                    return agg(inp)

                t, out, t_ref = time_against(fn, ra_call, args.repeat, args.budget)
                emit(f"byzfl ({kind})", t, compare(out, ref)[0] if note == "agree"
                     else f"n/a: {note}", t_ref)
    print()
    print("robustagg x = the peer's time / robustagg's time on the same inputs, each a median over\n"
          "blocks of runs that alternate between the two (the robustagg row: its own runs).")
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)
