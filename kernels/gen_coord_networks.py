#!/usr/bin/env python3
"""Prints the register networks of kernels/coordinate.cu (the block between
its "generated networks" markers): Batcher's odd-even merge sort for
N = 8 and 128 (net_sort), and the same pruned backwards to the two
middle ranks N/2 - 1 and N/2 (net_mid: the median's and MeaMed's centre
with the padding split evenly below and above the n values). A comparator
whose one output is dead afterwards keeps only its min or its max.

    python3 kernels/gen_coord_networks.py
"""
import itertools
import os
import random
import sys

# Batcher's comparator list is the CPU generator's, so both backends sort
# with the same network family; the stage order is the one the kernels were
# measured with (the CPU switches to the recursive order above 32 inputs for
# its 32 vector registers; ptxas allocates up to 255 per thread).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "host", "cpu"))
from gen_networks import batcher_layers as batcher  # noqa: E402

SIZES = (8, 128)  # the buckets that use them (run 3: 16, 32, 64 stay bitonic)


def prune(net, ranks):
    """[(i, j, op)] with op 'x' (both outputs), 'n' (min only), 'm' (max only)."""
    live = set(ranks)
    kept = []
    for (i, j) in reversed(net):
        li, lj = i in live, j in live
        if not (li or lj):
            continue
        kept.append((i, j, 'x' if li and lj else 'n' if li else 'm'))
        live.add(i)
        live.add(j)
    return list(reversed(kept))


def apply(net, v):
    w = list(v)
    for (i, j, op) in net:
        lo, hi = min(w[i], w[j]), max(w[i], w[j])
        if op != 'm':
            w[i] = lo
        if op != 'n':
            w[j] = hi
    return w


def check(n, net, ranks):
    rng = random.Random(n)
    tests = []
    if n <= 16:
        tests = [list(b) for b in itertools.product((0, 1), repeat=n)]
    tests += [[rng.randint(0, 1) for _ in range(n)] for _ in range(3000)]
    tests += [[rng.randint(0, 7) for _ in range(n)] for _ in range(3000)]
    tests += [rng.sample(range(n), n) for _ in range(3000)]
    for v in tests:
        w, s = apply(net, v), sorted(v)
        for r in ranks:
            assert w[r] == s[r], (n, r, v)


def emit(name, n, net):
    out = [f"template <> __device__ __forceinline__ void {name}<{n}>(int32_t (&v)[{n}]) {{"]
    line = " "
    for (i, j, op) in net:
        tok = {'x': 'CX', 'n': 'CN', 'm': 'CM'}[op] + f"({i},{j})"
        if len(line) + len(tok) + 1 > 98:
            out.append(line)
            line = " "
        line += " " + tok
    if line.strip():
        out.append(line)
    out.append("}")
    return "\n".join(out), len(net)


def main():
    out = []
    for n in SIZES:
        full = [(i, j, 'x') for (i, j) in batcher(n)]
        check(n, full, range(n))
        mid = prune([(i, j) for (i, j, _) in full], {n // 2 - 1, n // 2})
        check(n, mid, [n // 2 - 1, n // 2])
        text, c1 = emit("net_sort", n, full)
        out.append(f"/* N = {n}: {c1} comparators */")
        out.append(text)
        text, c2 = emit("net_mid", n, mid)
        out.append(f"/* N = {n}: {c2} comparators */")
        out.append(text)
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
