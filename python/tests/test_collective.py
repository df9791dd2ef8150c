"""robustagg.allreduce / reduce_scatter over a caller's transport.

The ranks are threads of this process and the transport moves bytes through
shared memory (ThreadTransport below), so the whole algorithm runs without a
communication library. Every result is checked against robustagg.aggregate on
the stacked vectors in one call: bit for bit for the coordinate-wise rules,
the mean and replicated mode (which aggregate exactly what one call does),
within a stated tolerance for the Gram-space rules in sharded mode (their
Gram sums are added shard by shard); and every rank must hold the same bits.
"""

import threading

import numpy as np
import pytest

import robustagg

P = 4


class ThreadTransport(robustagg.Transport):
    """P threads of one process as ranks: each collective posts this rank's
    buffer, waits for every rank, copies what it receives, waits again."""

    def __init__(self, shared, rank):
        self.shared, self.rank, self.size = shared, rank, shared["size"]

    def _exchange(self, posted):
        sh = self.shared
        sh["slots"][self.rank] = posted
        sh["barrier"].wait()
        return sh["slots"]

    def alltoallv(self, send, sc, sd, recv, rc, rd):
        slots = self._exchange((send, sc, sd))
        for p, (s_buf, s_cnt, s_dsp) in enumerate(slots):
            c = s_cnt[self.rank]
            assert c == rc[p]
            recv[rd[p]:rd[p] + c] = s_buf[s_dsp[self.rank]:s_dsp[self.rank] + c]
        self.shared["barrier"].wait()  # nobody reuses a buffer a peer still reads

    def allgatherv(self, buf, counts, displs):
        slots = self._exchange((buf, counts, displs))
        for p, (b, c, d) in enumerate(slots):
            if p != self.rank:
                buf[displs[p]:displs[p] + counts[p]] = b[d[p]:d[p] + c[p]]
        self.shared["barrier"].wait()


def run_ranks(fn, size=P, transport=ThreadTransport):
    """fn(transport, rank) on `size` threads; returns the results and the
    exceptions, by rank."""
    shared = {"size": size, "slots": [None] * size, "barrier": threading.Barrier(size, timeout=60)}
    out, errors = [None] * size, [None] * size

    def body(r):
        try:
            out[r] = fn(transport(shared, r), r)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors[r] = e

    threads = [threading.Thread(target=body, args=(r,)) for r in range(size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out, errors


def rows(seed, n, d, dtype=np.float32, hostile=()):
    rng = np.random.default_rng(seed)
    x = (np.sin(0.3 * np.arange(d)) + 0.1 * rng.standard_normal((n, d))).astype(dtype)
    for i, kind in hostile:
        x[i] = {"nan": np.nan, "flip": -1e6, "inf": np.inf}[kind]
    return x


EXACT = {"mean", "median", "trimmed_mean", "meamed"}


def feasible_f(rule, n):
    for f in (1, 0):
        if robustagg.min_inputs(rule, f) <= n:
            return f
    return None


def expect_same(got, ref, exact, what):
    if exact:
        assert got.tobytes() == ref.tobytes(), what
    else:
        tol = 1e-4 if got.dtype == np.float32 else 4e-3
        np.testing.assert_allclose(got.astype(np.float64), ref.astype(np.float64),
                                   rtol=tol, atol=tol * 0.1, err_msg=what)


def check_allreduce(rule, mode, reduce="mean", dtype=np.float32, d=37, hostile=(), seed=0,
                    **options):
    f = feasible_f(rule, P)
    x = rows(seed, P, d, dtype, hostile)
    results, errors = run_ranks(lambda t, r: robustagg.allreduce(
        x[r].copy(), rule, f, transport=t, mode=mode, reduce=reduce, return_report=True,
        **options))
    assert errors == [None] * P, errors
    ref, ref_rep = robustagg.aggregate(x, rule=rule, f=f, return_report=True, **options)
    if reduce == "sum":
        ref = (ref.astype(np.float64) * P).astype(dtype)
    what = f"{rule} {mode} {reduce} {np.dtype(dtype).name}"
    for r in range(P):
        out, rep = results[r]
        assert out.dtype == dtype and out.shape == (d,)
        assert out.tobytes() == results[0][0].tobytes(), f"{what}: rank {r} differs from rank 0"
        assert np.array_equal(rep.selected, results[0][1].selected)
    exact = (rule in EXACT and not options) or mode == "replicated"
    expect_same(results[0][0], ref, exact, what)
    np.testing.assert_array_equal(results[0][1].nonfinite, ref_rep.nonfinite)
    if rule not in EXACT:
        np.testing.assert_array_equal(results[0][1].selected, ref_rep.selected)
    return results[0]


@pytest.mark.parametrize("mode", ["sharded", "replicated"])
@pytest.mark.parametrize("rule", robustagg.rules)
def test_every_rule_matches_one_aggregate_call(rule, mode):
    if feasible_f(rule, P) is None:
        pytest.skip(f"{rule} needs more than {P} inputs")
    check_allreduce(rule, mode, seed=robustagg.rules.index(rule))


@pytest.mark.parametrize("rule", ["krum", "geomed"])
def test_fp32_gram_sums_sharded(rule):
    # the option reaches every rank's shard sums and the shared solve (at P = 4
    # rows the double pass serves it: the fp32 runs start at 17, test_gram)
    check_allreduce(rule, "sharded", seed=7, distances="gram_fp32")


@pytest.mark.parametrize("rule", ["median", "krum", "geomed"])
def test_sum_half_precision_and_hostile_ranks(rule):
    out, _ = check_allreduce(rule, "sharded", reduce="sum", dtype=np.float16, d=50,
                             hostile=[(3, "nan")])
    assert np.isfinite(out).all()
    out, rep = check_allreduce(rule, "sharded", hostile=[(1, "flip")], d=41)
    assert np.isfinite(out).all() and np.abs(out).max() < 10
    if rule == "krum":
        assert rep.selected[1] == 0


def test_pre_steps_run_sharded():
    out, rep = check_allreduce("median", "sharded", mix="nnm", hostile=[(2, "nan")])
    assert np.isfinite(out).all()
    check_allreduce("krum", "sharded", clip_norm=2.0)


def test_reduce_scatter_and_in_place():
    c = 9
    x = rows(5, P, P * c)
    results, errors = run_ranks(lambda t, r: robustagg.reduce_scatter(
        x[r].copy(), "trimmed_mean", 1, transport=t))
    assert errors == [None] * P, errors
    ref = robustagg.aggregate(x, rule="trimmed_mean", f=1)
    for r in range(P):
        assert results[r].tobytes() == ref[r * c:(r + 1) * c].tobytes()

    def in_place(t, r):
        v = x[r].copy()
        got = robustagg.allreduce(v, "median", 1, transport=t, out=v)
        assert got is v
        return v

    results, errors = run_ranks(in_place)
    assert errors == [None] * P, errors
    assert results[2].tobytes() == robustagg.aggregate(x, rule="median", f=1).tobytes()


def test_a_transport_that_raises_fails_every_rank_with_its_exception():
    class Broken(ThreadTransport):
        def alltoallv(self, *args):
            raise ConnectionError(f"link to rank {(self.rank + 1) % self.size} lost")

    _, errors = run_ranks(lambda t, r: robustagg.allreduce(np.ones(8, np.float32), "median", 1,
                                                           transport=t), transport=Broken)
    for r, e in enumerate(errors):
        assert isinstance(e, robustagg.RaggError) and e.name == "RAGG_ERR_TRANSPORT", (r, e)
        assert "alltoallv callback" in e.message
        assert isinstance(e.__cause__, ConnectionError) and "lost" in str(e.__cause__)


def test_an_interrupt_in_a_callback_stays_an_interrupt():
    class Interrupted(robustagg.Transport):
        rank, size = 0, 1

        def alltoallv(self, *args):
            raise KeyboardInterrupt

        allgatherv = alltoallv

    with pytest.raises(KeyboardInterrupt):
        robustagg.allreduce(np.ones(4, np.float32), "mean", 0, transport=Interrupted())


def test_bad_arguments_refused_before_any_exchange():
    class Never(robustagg.Transport):
        rank, size = 0, 4

        def alltoallv(self, *a):
            raise AssertionError("no exchange for a refused call")

        allgatherv = alltoallv

    t = Never()
    x = np.ones(8, np.float32)
    with pytest.raises(robustagg.RaggArgumentError, match="mode"):
        robustagg.allreduce(x, "median", 1, transport=t, mode="ring")
    with pytest.raises(robustagg.RaggArgumentError, match="reduce"):
        robustagg.allreduce(x, "median", 1, transport=t, reduce="max")
    with pytest.raises(robustagg.RaggArgumentError, match="1-D"):
        robustagg.allreduce(np.ones((2, 4), np.float32), "median", 1, transport=t)
    with pytest.raises(robustagg.RaggArgumentError, match="out must hold 8"):
        robustagg.allreduce(x, "median", 1, transport=t, out=np.empty(7, np.float32))
    with pytest.raises(robustagg.RaggArgumentError, match="multiple of the 4 ranks"):
        robustagg.reduce_scatter(np.ones(10, np.float32), "median", 1, transport=t)
    with pytest.raises(robustagg.RaggArgumentError, match="TOO_MANY_BYZANTINE|needs at least"):
        robustagg.allreduce(x, "krum", 1, transport=t)  # Krum needs 5 inputs for f = 1
    t.rank = 4
    with pytest.raises(robustagg.RaggArgumentError, match="transport.rank"):
        robustagg.allreduce(x, "median", 1, transport=t)
    with pytest.raises(TypeError, match="transport has no 'rank'"):
        robustagg.allreduce(x, "median", 1, transport=object())
