"""Byzantine training demo: python -m robustagg.demo

Trains a small MLP (64-64-10, plain NumPy with hand-written backprop; torch on
the GPU with --device cuda) on scikit-learn's bundled digits data set (no
download) with n simulated workers, f of them Byzantine. Honest workers send
their worker momentum m_t = beta m_{t-1} + (1 - beta) g_t; the server applies
the robust aggregate of the n vectors. Every attack is run against every rule,
from the same initialisation, data split and batches, and the final test
accuracies are printed as a table and written to <out>/accuracy.csv and
<out>/accuracy.png.

Attacks (the f Byzantine workers know the honest vectors of the step):
  none        the f workers behave honestly
  sign_flip   send -s mean(honest), s = --flip-scale (10; at s = 1 a flip only slows
              the mean down while f < n/2)
  alie        "a little is enough": mean - z std per coordinate (Baruch et al. 2019)
  ipm         inner product manipulation: -eps mean(honest), eps = 0.1 (Xie et al. 2020)
  gaussian    N(0, sigma^2) per coordinate, sigma = 1
  nan         NaN vectors (every other one +Inf)
  mimic       copy honest worker 0 (skews a non-IID split towards one worker)
  label_flip  honest training, but on labels y -> 9 - y
  alie_opt    ALIE with the z that hurts this rule most: each step, the aggregate of
              every z in ALIE_OPT_SCALES is computed (same rule, same pre-step) and
              the z whose aggregate lies farthest from the honest mean is sent
  ipm_opt     IPM the same way, over eps in IPM_OPT_SCALES
"all" is the first eight; name alie_opt and ipm_opt explicitly, or use all+opt.

Pre-aggregation (--pre, applied in front of every rule but mean; DESIGN.md §2):
  none        the rule alone
  arc         adaptive robust clipping: the floor(2f(n-f)/n) largest inputs are scaled
              down to the largest norm among the others
  nnm         nearest neighbour mixing: each input becomes the mean of its n-f
              nearest neighbours
  arc+nnm     ARC, then NNM
  bucketing   a fresh random permutation each step, then the means of groups of
              --bucket-size inputs: the rule sees ceil(n/s) inputs with the same f
A comma-separated list gives one table row per rule and pre-step, e.g.
--pre none,nnm prints krum and krum+nnm.
"""

import argparse
import csv
import math
import os
import statistics
import sys
import time

import numpy as np

ATTACKS = ("none", "sign_flip", "alie", "ipm", "gaussian", "nan", "mimic", "label_flip")
OPT_ATTACKS = ("alie_opt", "ipm_opt")
PRE_STEPS = ("none", "arc", "nnm", "arc+nnm", "bucketing")
# The scales the optimal attacks try each step (ALIE's z, IPM's eps): a log-spaced
# grid wide enough to contain both the scale that slips through a rule's filter
# and the one past which the rule drops the Byzantine vectors.
ALIE_OPT_SCALES = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
IPM_OPT_SCALES = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
HIDDEN = 64
CLASSES = 10
FEATURES = 64


# ------------------------------------------------------------------ data

def load_digits_split(seed, test_fraction=0.25):
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    n_test = int(len(y) * test_fraction)
    te, tr = perm[:n_test], perm[n_test:]
    return x[tr], y[tr], x[te], y[te]


def split_workers(y, n, alpha, rng):
    """Index lists, one per worker: IID (alpha None) or Dirichlet(alpha) per class."""
    if alpha is None:
        return np.array_split(rng.permutation(len(y)), n)
    shards = [[] for _ in range(n)]
    for c in range(CLASSES):
        idx = rng.permutation(np.flatnonzero(y == c))
        p = rng.dirichlet(alpha * np.ones(n))
        cuts = (np.cumsum(p)[:-1] * len(idx)).astype(int)
        for w, part in enumerate(np.split(idx, cuts)):
            shards[w].extend(part.tolist())
    for w in range(n):  # every worker holds at least one sample
        if not shards[w]:
            shards[w].append(int(rng.integers(len(y))))
    return [np.asarray(s) for s in shards]


# ------------------------------------------------------------------ model

class NumpyOps:
    name = "cpu"

    def __init__(self):
        self.xp = np

    def asarray(self, a, dtype=np.float32):
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, a):
        return a

    def relu(self, a):
        return np.maximum(a, 0)

    def amax(self, a, axis):
        return a.max(axis, keepdims=True)

    def onehot(self, y):
        out = np.zeros(y.shape + (CLASSES,), np.float32)
        np.put_along_axis(out, y[..., None], 1.0, axis=-1)
        return out

    def randn(self, rng, shape):
        return rng.standard_normal(shape).astype(np.float32)


class TorchOps:
    name = "cuda"

    def __init__(self, device):
        import torch

        self.t = torch
        self.device = device

    def asarray(self, a, dtype=np.float32):
        t = self.t
        dt = {np.float32: t.float32, np.int64: t.int64}[dtype]
        return t.as_tensor(np.asarray(a), dtype=dt, device=self.device)

    def to_numpy(self, a):
        return a.detach().cpu().numpy()

    def relu(self, a):
        return self.t.clamp_min(a, 0)

    def amax(self, a, axis):
        return a.amax(axis, keepdim=True)

    def onehot(self, y):
        return self.t.nn.functional.one_hot(y, CLASSES).float()

    def randn(self, rng, shape):
        return self.asarray(rng.standard_normal(shape).astype(np.float32))


def param_count():
    return FEATURES * HIDDEN + HIDDEN + HIDDEN * CLASSES + CLASSES


def unpack(theta):
    """Views of the flat parameter vector(s); theta is (d,) or (k, d)."""
    lead = theta.shape[:-1]
    o = 0
    parts = []
    for shape in ((FEATURES, HIDDEN), (HIDDEN,), (HIDDEN, CLASSES), (CLASSES,)):
        size = int(np.prod(shape))
        parts.append(theta[..., o:o + size].reshape(lead + shape))
        o += size
    return parts


def init_params(ops, rng):
    w1 = ops.randn(rng, (FEATURES, HIDDEN)) * math.sqrt(2.0 / FEATURES)
    w2 = ops.randn(rng, (HIDDEN, CLASSES)) * math.sqrt(1.0 / HIDDEN)
    xp = ops.xp if hasattr(ops, "xp") else ops.t
    zeros = (lambda k: ops.asarray(np.zeros(k, np.float32)))
    return xp.concatenate([w1.reshape(-1), zeros(HIDDEN), w2.reshape(-1), zeros(CLASSES)]) \
        if xp is np else ops.t.cat([w1.reshape(-1), zeros(HIDDEN), w2.reshape(-1), zeros(CLASSES)])


def worker_gradients(ops, theta, xb, yb):
    """Cross-entropy gradients of k workers at once: xb (k, b, 64), yb (k, b) -> (k, d)."""
    w1, b1, w2, b2 = unpack(theta)
    k, b = yb.shape
    h_pre = xb @ w1 + b1
    h = ops.relu(h_pre)
    logits = h @ w2 + b2
    logits = logits - ops.amax(logits, 2)
    e = np.exp(logits) if ops.name == "cpu" else ops.t.exp(logits)
    p = e / e.sum(2, **({"keepdims": True} if ops.name == "cpu" else {"keepdim": True}))
    dlogits = (p - ops.onehot(yb)) / b  # (k, b, 10)
    g_w2 = h.swapaxes(1, 2) @ dlogits
    g_b2 = dlogits.sum(1)
    dh = (dlogits @ w2.swapaxes(0, 1)) * (h_pre > 0)
    g_w1 = xb.swapaxes(1, 2) @ dh
    g_b1 = dh.sum(1)
    parts = [g_w1.reshape(k, -1), g_b1, g_w2.reshape(k, -1), g_b2]
    return np.concatenate(parts, 1) if ops.name == "cpu" else ops.t.cat(parts, 1)


def accuracy(ops, theta, x, y):
    w1, b1, w2, b2 = unpack(theta)
    with np.errstate(all="ignore"):
        logits = ops.to_numpy(ops.relu(x @ w1 + b1) @ w2 + b2)
    logits = np.where(np.isfinite(logits), logits, -np.inf)
    pred = np.argmax(logits, 1)
    pred[~np.isfinite(logits).any(1)] = -1  # a diverged model predicts nothing right
    return float(np.mean(pred == ops.to_numpy(y)))


# ------------------------------------------------------------------ attacks

def alie_z(n, f):
    s = math.floor(n / 2 + 1) - f
    return statistics.NormalDist().inv_cdf((n - s) / n)


def byzantine_vectors(ops, attack, honest, f, n, rng, flip_scale=10.0):
    """(f, d) vectors the Byzantine workers send, from the honest (h, d) ones."""
    mean = honest.mean(0)
    d = honest.shape[1]
    if attack == "sign_flip":
        v = -flip_scale * mean
    elif attack == "alie":
        std = honest.std(0)
        v = mean - alie_z(n, f) * std
    elif attack == "ipm":
        v = -0.1 * mean
    elif attack == "gaussian":
        return ops.randn(rng, (f, d))
    elif attack == "nan":
        rows = [np.full(d, np.nan if i % 2 == 0 else np.inf, np.float32) for i in range(f)]
        return ops.asarray(np.stack(rows))
    elif attack == "mimic":
        v = honest[0]
    else:
        raise ValueError(attack)
    return v[None, :].repeat(f, 0) if ops.name == "cpu" else v[None, :].expand(f, d).clone()


def _cat(ops, parts):
    return np.concatenate(parts) if ops.name == "cpu" else ops.t.cat(parts)


def _repeat(ops, v, f):
    return v[None, :].repeat(f, 0) if ops.name == "cpu" else v[None, :].expand(f, -1).clone()


def optimal_byzantine_vectors(ops, attack, honest, f, aggregate):
    """(f, d) vectors of ALIE or IPM at the scale, from a fixed grid, whose aggregate
    (by `aggregate`, the server's own rule and options) lies farthest from the
    honest mean; returns them and the scale."""
    mean = honest.mean(0)
    if attack == "alie_opt":
        direction, scales = -honest.std(0), ALIE_OPT_SCALES
    elif attack == "ipm_opt":
        direction, scales = -mean, IPM_OPT_SCALES
    else:
        raise ValueError(attack)
    best, best_dist, best_scale = None, -1.0, None
    for s in scales:
        byz = _repeat(ops, (mean + s * direction) if attack == "alie_opt" else s * direction, f)
        agg = aggregate(_cat(ops, [honest, byz]))
        dist = float(((agg - mean) ** 2).sum())
        if not math.isfinite(dist):
            dist = math.inf  # a non-finite aggregate is the worst outcome there is
        if dist > best_dist:
            best, best_dist, best_scale = byz, dist, s
    return best, best_scale


def pre_options(pre, args, step):
    """The aggregate options of a --pre value; bucketing draws a new permutation each step."""
    opts = {}
    if pre in ("arc", "arc+nnm"):
        opts["adaptive_clip"] = True
    if pre in ("nnm", "arc+nnm"):
        opts["mix"] = "nnm"
    elif pre == "bucketing":
        opts.update(mix="bucketing", bucket_size=args.bucket_size,
                    seed=args.seed * 1000003 + step)
    return opts


def row_label(rule, pre):
    return rule if pre == "none" else f"{rule}+{pre}"


# ------------------------------------------------------------------ training

def train_one(ops, data, rule, attack, args, shards, pbar=None, pre="none"):
    import robustagg

    x_tr, y_tr, x_te, y_te, y_tr_np = data
    n, f = args.workers, args.byzantine
    rng = np.random.default_rng(args.seed)
    theta = init_params(ops, rng)
    momenta = None
    options = {}
    prev = None
    for step in range(args.steps):
        idx = np.stack([shards[w][rng.integers(len(shards[w]), size=args.batch)]
                        for w in range(n)])
        xb = x_tr[ops.asarray(idx, np.int64) if ops.name != "cpu" else idx]
        labels = y_tr if attack != "label_flip" else None
        if labels is None:
            yb_np = np.stack([y_tr_np[idx[w]] if w < n - f else (CLASSES - 1) - y_tr_np[idx[w]]
                              for w in range(n)])
            yb = ops.asarray(yb_np, np.int64)
        else:
            yb = y_tr[ops.asarray(idx, np.int64) if ops.name != "cpu" else idx]
        with np.errstate(all="ignore"):
            g = worker_gradients(ops, theta, xb, yb)
            momenta = (1 - args.momentum) * g if momenta is None else \
                args.momentum * momenta + (1 - args.momentum) * g
            if rule == "centered_clip":
                # Clipping around the previous aggregate (Karimireddy et al. 2021, Alg. 2).
                options = {"tau": args.cc_tau, "iters": 3}
                if prev is not None:
                    options["cc_center"] = prev
            if pre != "none":
                options = {**options, **pre_options(pre, args, step)}
            if attack in ("none", "label_flip"):
                sent = momenta
            elif attack in OPT_ATTACKS:
                byz, _ = optimal_byzantine_vectors(
                    ops, attack, momenta[: n - f], f,
                    lambda v: robustagg.aggregate(v, rule=rule, f=f, **options))
                sent = _cat(ops, [momenta[: n - f], byz])
            else:
                byz = byzantine_vectors(ops, attack, momenta[: n - f], f, n, rng, args.flip_scale)
                sent = (np.concatenate([momenta[: n - f], byz]) if ops.name == "cpu"
                        else ops.t.cat([momenta[: n - f], byz]))
            agg = robustagg.aggregate(sent, rule=rule, f=f, **options)
            prev = agg
            theta = theta - args.lr * agg
        if pbar is not None:
            pbar.update(1)
    return accuracy(ops, theta, x_te, y_te)


def rule_feasible(rule, n, f, brute_limit, pre="none", bucket_size=2):
    import robustagg

    if pre == "bucketing":  # the rule sees the ceil(n/s) bucket means, with the same f
        m = -(-n // bucket_size)
        if m < robustagg.min_inputs(rule, f):
            return f"{m} buckets, needs >= {robustagg.min_inputs(rule, f)}"
        n = m
    if n < robustagg.min_inputs(rule, f):
        return f"needs n >= {robustagg.min_inputs(rule, f)}"
    if rule in ("brute", "smea") and math.comb(n, f) > brute_limit:
        return f"C({n},{f}) > {brute_limit}"
    return None


def make_ops(device):
    if device in ("auto", "cuda"):
        try:
            import torch

            import robustagg

            if torch.cuda.is_available() and robustagg.cuda_available():
                return TorchOps("cuda")
        except ImportError:
            pass
        if device == "cuda":
            raise SystemExit("--device cuda: needs torch with a GPU and a librobustagg built "
                             "with its CUDA backend")
    return NumpyOps()


def limit_openmp_threads(n):
    """Sets the OpenMP thread count of this thread's later parallel regions.

    The demo's aggregations are tiny (n x 4810 values): a parallel region costs
    more than it saves, and on a busy machine waiting threads cost milliseconds
    per call. librobustagg has no thread knob of its own, so this goes to the
    OpenMP runtime (GNU libgomp, which the library links) directly."""
    import ctypes

    try:
        ctypes.CDLL("libgomp.so.1").omp_set_num_threads(int(n))
    except (OSError, AttributeError):
        pass


def run(args):
    import robustagg

    if args.threads > 0:
        limit_openmp_threads(args.threads)
    ops = make_ops(args.device)
    rules = list(robustagg.rules) if args.rules in (None, "all") else args.rules.split(",")
    attacks = []
    for a in ["all"] if args.attacks is None else args.attacks.split(","):
        attacks += list(ATTACKS) if a == "all" else \
            list(ATTACKS + OPT_ATTACKS) if a == "all+opt" else [a]
    pres = args.pre.split(",")
    for r in rules:
        if r not in robustagg.rules:
            raise SystemExit(f"unknown rule {r!r}: {', '.join(robustagg.rules)}")
    for a in attacks:
        if a not in ATTACKS + OPT_ATTACKS:
            raise SystemExit(f"unknown attack {a!r}: {', '.join(ATTACKS + OPT_ATTACKS)}")
    for p in pres:
        if p not in PRE_STEPS:
            raise SystemExit(f"unknown pre-step {p!r}: {', '.join(PRE_STEPS)}")
    if not 0 <= args.byzantine < args.workers:
        raise SystemExit("--byzantine must be in [0, --workers)")
    if args.bucket_size < 1:
        raise SystemExit("--bucket-size must be >= 1")
    # One row per (rule, pre-step); the mean is the unprotected baseline: one row, alone.
    rows = []
    for r in rules:
        for p in (["none"] if r == "mean" else pres):
            if (r, p) not in rows:
                rows.append((r, p))
    x_tr, y_tr, x_te, y_te = load_digits_split(args.seed)
    shards = split_workers(y_tr, args.workers, args.alpha, np.random.default_rng(args.seed + 1))
    data = (ops.asarray(x_tr), ops.asarray(y_tr, np.int64), ops.asarray(x_te),
            ops.asarray(y_te, np.int64), y_tr)
    labels = [row_label(r, p) for r, p in rows]
    skipped = {row_label(r, p): rule_feasible(r, args.workers, args.byzantine, args.brute_limit,
                                              p, args.bucket_size) for r, p in rows}
    runnable = [lb for lb in labels if skipped[lb] is None]
    total = len(runnable) * len(attacks) * args.steps
    pbar = None
    if not args.quiet:
        try:
            from tqdm import tqdm

            pbar = tqdm(total=total, unit="step", desc="training", file=sys.stderr,
                        mininterval=0.5)
        except ImportError:
            pass
    results = {}
    t0 = time.perf_counter()
    for (rule, pre), label in zip(rows, labels):
        for attack in attacks:
            if skipped[label] is not None:
                results[(label, attack)] = None
                continue
            if pbar is not None:
                pbar.set_postfix_str(f"{label} / {attack}", refresh=False)
            results[(label, attack)] = train_one(ops, data, rule, attack, args, shards, pbar,
                                                 pre=pre)
    if pbar is not None:
        pbar.close()
    return {"rules": labels, "rows": rows, "attacks": attacks, "acc": results,
            "skipped": skipped, "seconds": time.perf_counter() - t0, "device": ops.name}


def format_table(res):
    attacks = res["attacks"]
    w = max(10, max(len(a) for a in attacks) + 1)
    lw = max(14, max(len(r) for r in res["rules"]) + 1)
    lines = ["rule".ljust(lw) + "".join(a.rjust(w) for a in attacks)]
    for r in res["rules"]:
        cells = []
        for a in attacks:
            v = res["acc"][(r, a)]
            cells.append(("-" if v is None else f"{100 * v:.1f}").rjust(w))
        note = f"  ({res['skipped'][r]})" if res["skipped"][r] else ""
        lines.append(r.ljust(lw) + "".join(cells) + note)
    return "\n".join(lines)


def write_outputs(res, out_dir, args):
    os.makedirs(out_dir, exist_ok=True)
    csv_path = os.path.join(out_dir, "accuracy.csv")
    with open(csv_path, "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["rule", "attack", "test_accuracy", "workers", "byzantine", "steps",
                     "alpha", "seed", "pre"])
        rows = res.get("rows") or [(r, "none") for r in res["rules"]]
        for label, (rule, pre) in zip(res["rules"], rows):
            for a in res["attacks"]:
                v = res["acc"][(label, a)]
                wr.writerow([rule, a, "" if v is None else f"{v:.4f}", args.workers,
                             args.byzantine, args.steps,
                             "" if args.alpha is None else args.alpha, args.seed, pre])
    png_path = os.path.join(out_dir, "accuracy.png")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return csv_path, None
    rules, attacks = res["rules"], res["attacks"]
    grid = np.array([[np.nan if res["acc"][(r, a)] is None else 100 * res["acc"][(r, a)]
                      for a in attacks] for r in rules])
    fig, ax = plt.subplots(figsize=(1.1 * len(attacks) + 3, 0.42 * len(rules) + 1.8))
    im = ax.imshow(grid, vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right")
    ax.set_yticks(range(len(rules)), rules)
    for i in range(len(rules)):
        for j in range(len(attacks)):
            txt = "-" if np.isnan(grid[i, j]) else f"{grid[i, j]:.0f}"
            ax.text(j, i, txt, ha="center", va="center", fontsize=8)
    split = "IID" if args.alpha is None else f"Dirichlet alpha={args.alpha}"
    ax.set_title(f"test accuracy (%), digits MLP, n={args.workers}, f={args.byzantine}, "
                 f"{args.steps} steps, {split}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return csv_path, png_path


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m robustagg.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=11, help="n, simulated workers (11: enough for Bulyan at f = 2)")
    p.add_argument("--byzantine", type=int, default=2, help="f, Byzantine workers (2)")
    p.add_argument("--rules", default="all", help="comma-separated rule names, or all")
    p.add_argument("--attacks", default="all", help="comma-separated attacks: "
                   + ", ".join(ATTACKS + OPT_ATTACKS) + "; all (the first eight), all+opt")
    p.add_argument("--pre", default="none",
                   help="comma-separated pre-steps in front of every rule but mean, one table "
                        "row each: " + ", ".join(PRE_STEPS) + " (none)")
    p.add_argument("--bucket-size", type=int, default=2,
                   help="inputs per bucket for --pre bucketing (2)")
    p.add_argument("--steps", type=int, default=200, help="training steps per run (200)")
    p.add_argument("--batch", type=int, default=32, help="batch size per worker (32)")
    p.add_argument("--lr", type=float, default=0.5, help="learning rate (0.5)")
    p.add_argument("--momentum", type=float, default=0.9, help="worker momentum beta (0.9)")
    p.add_argument("--flip-scale", type=float, default=10.0,
                   help="sign_flip sends -s mean(honest) (10)")
    p.add_argument("--cc-tau", type=float, default=0.1,
                   help="centered_clip radius tau, around the previous aggregate (0.1)")
    p.add_argument("--alpha", type=float, default=None,
                   help="Dirichlet concentration of a non-IID split (default: IID)")
    p.add_argument("--brute-limit", type=int, default=100000,
                   help="run brute and smea only when C(n, f) is at most this")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--out", default="demo_out", help="folder for accuracy.csv and .png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1,
                   help="OpenMP threads for librobustagg (1: the inputs are tiny; 0: leave as is)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    res = run(args)
    split = "IID" if args.alpha is None else f"Dirichlet(alpha={args.alpha})"
    pres = "" if args.pre == "none" else f", pre-steps {args.pre}"
    print(f"\nfinal test accuracy (%), n={args.workers} workers, f={args.byzantine} Byzantine, "
          f"{args.steps} steps, {split}{pres}, device {res['device']}, {res['seconds']:.0f} s\n")
    print(format_table(res))
    csv_path, png_path = write_outputs(res, args.out, args)
    print(f"\nwrote {csv_path}" + (f" and {png_path}" if png_path else
                                   " (matplotlib missing: no heatmap)"))
    return res


if __name__ == "__main__":
    main()
