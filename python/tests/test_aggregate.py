"""robustagg.aggregate through every input kind available on this machine."""

import importlib.util
import itertools

import numpy as np
import pytest

import robustagg
from robustagg import RaggArgumentError, RaggError

HAVE_TORCH = importlib.util.find_spec("torch") is not None
if HAVE_TORCH:
    import torch
HAVE_CUPY = importlib.util.find_spec("cupy") is not None
HAVE_ML_DTYPES = importlib.util.find_spec("ml_dtypes") is not None

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")

# Tolerance per dtype (atol + rtol * |ref|), against a float64 reference.
TOL = {"float32": (1e-5, 1e-5), "float16": (2e-3, 2e-3), "bfloat16": (2e-2, 2e-2)}

N, F, D = 11, 2, 257  # n >= 4f+3 so that every rule runs; d not a tile multiple


def inputs(n=N, d=D, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, d)) + 0.5).astype(np.float32)


# ----------------------------------------------------------------- references

def krum_scores(x, f):
    n = len(x)
    dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    k = n - f - 2
    return np.array([np.sort(np.delete(dist[i], i))[:k].sum() for i in range(n)])


def meamed_ref(x, f):
    n = len(x)
    med = np.median(x, 0)
    order = np.argsort(np.abs(x - med), axis=0, kind="stable")[: n - f]
    return np.take_along_axis(x, order, 0).mean(0)


def brute_ref(x, f):
    n = len(x)
    dist = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    best = min(itertools.combinations(range(n), n - f),
               key=lambda s: max(dist[i, j] for i in s for j in s))
    return x[list(best)].mean(0)


def monna_ref(x, f, t=0):
    dist = ((x - x[t]) ** 2).sum(-1)
    idx = np.argsort(dist, kind="stable")[: len(x) - f]
    return x[idx].mean(0)


def cc_ref(x, tau, iters, v0=None):
    v = np.zeros(x.shape[1]) if v0 is None else v0.astype(np.float64)
    for _ in range(iters):
        diff = x - v
        norms = np.linalg.norm(diff, axis=1)
        scale = np.minimum(1.0, tau / np.maximum(norms, 1e-300))
        v = v + (diff * scale[:, None]).mean(0)
    return v


REFERENCES = {
    "mean": lambda x, f: x.mean(0),
    "median": lambda x, f: np.median(x, 0),
    "trimmed_mean": lambda x, f: np.sort(x, 0)[f:len(x) - f].mean(0),
    "meamed": meamed_ref,
    "krum": lambda x, f: x[np.argmin(krum_scores(x, f))],
    "multi_krum": lambda x, f: x[np.argsort(krum_scores(x, f), kind="stable")[: len(x) - f]].mean(0),
    "brute": brute_ref,
    "monna": monna_ref,
    "centered_clip": lambda x, f: cc_ref(x, 100.0, 1),
}


def close(out, ref, dtype="float32"):
    atol, rtol = TOL[dtype]
    out = np.asarray(out, dtype=np.float64)
    bad = np.abs(out - ref) > atol + rtol * np.abs(ref)
    assert not bad.any(), (f"{bad.sum()} values differ, first at {np.argmax(bad)}: "
                           f"{out[np.argmax(bad)]} vs {ref[np.argmax(bad)]} (atol {atol}, rtol {rtol})")


# ----------------------------------------------------------------- basics

def test_rules_and_version():
    assert robustagg.rules == ("mean", "median", "trimmed_mean", "meamed", "krum", "multi_krum",
                               "bulyan", "geomed", "brute", "centered_clip", "monna", "caf",
                               "smea")
    assert robustagg.version().count(".") == 2
    defaults = robustagg.config_defaults()
    assert defaults["tau"] > 0 and defaults["max_iters"] >= 1
    assert defaults["distances"] == "gram" and defaults["mix"] == "none"


@pytest.mark.parametrize("rule", robustagg.rules)
def test_every_rule_numpy(rule):
    x = inputs()
    out = robustagg.aggregate(x, rule=rule, f=F)
    assert isinstance(out, np.ndarray) and out.shape == (D,) and out.dtype == np.float32
    assert np.isfinite(out).all()
    if rule in REFERENCES:
        close(out, REFERENCES[rule](x.astype(np.float64), F))


@pytest.mark.parametrize("rule", [r for r in robustagg.rules if r != "mean"])
def test_hostile_rows_are_contained(rule):
    """With f hostile rows, every rule but mean returns a finite vector near the honest ones."""
    x = inputs()
    x[1] = np.nan
    x[4] = np.inf
    honest = np.delete(x, [1, 4], axis=0)
    out = robustagg.aggregate(x, rule=rule, f=F)
    assert np.isfinite(out).all(), rule
    lo, hi = honest.min(0), honest.max(0)
    if rule in ("median", "trimmed_mean"):
        assert ((out >= lo) & (out <= hi)).all()
    assert np.linalg.norm(out - honest.mean(0)) < np.linalg.norm(honest - honest.mean(0), axis=1).max()


def test_huge_rows_do_not_move_the_result():
    x = inputs()
    x[0] = 3e38
    x[1] = -1e30
    for rule in ("median", "krum", "geomed", "caf"):
        out = robustagg.aggregate(x, rule=rule, f=F)
        assert np.abs(out).max() < 10, rule


def test_geomed_minimises_the_sum_of_distances():
    x = inputs().astype(np.float64)
    out = robustagg.aggregate(x.astype(np.float32), rule="geomed", f=F).astype(np.float64)

    def objective(z):
        return np.linalg.norm(x - z, axis=1).sum()

    assert objective(out) <= objective(x.mean(0)) + 1e-4
    assert objective(out) <= min(objective(r) for r in x) + 1e-4


# ----------------------------------------------------------------- layouts

def test_leading_dimension_is_used_without_copy():
    wide = inputs(d=D + 13)
    view = wide[:, :D]
    assert not view.flags.c_contiguous
    for rule in ("median", "krum", "geomed"):
        np.testing.assert_array_equal(robustagg.aggregate(view, rule=rule, f=F),
                                      robustagg.aggregate(np.ascontiguousarray(view), rule=rule, f=F))


def test_non_contiguous_rows_are_refused():
    x = inputs()
    with pytest.raises(RaggArgumentError, match="contiguous"):
        robustagg.aggregate(x[:, ::2], rule="median", f=F)
    with pytest.raises(RaggArgumentError, match="contiguous"):
        robustagg.aggregate(np.asfortranarray(x), rule="median", f=F)


def test_single_column_and_single_row():
    x = inputs(d=1)
    close(robustagg.aggregate(x, rule="median", f=F), np.median(x.astype(np.float64), 0))
    one = inputs(n=1)
    close(robustagg.aggregate(one, rule="mean", f=0), one[0].astype(np.float64))


@pytest.mark.parametrize("rule", ["median", "krum", "multi_krum", "geomed", "bulyan"])
def test_list_of_rows_matches_matrix(rule):
    x = inputs()
    rows = [np.array(r) for r in x]  # separate allocations
    np.testing.assert_array_equal(robustagg.aggregate(rows, rule=rule, f=F),
                                  robustagg.aggregate(x, rule=rule, f=F))
    out, rep = robustagg.aggregate(rows, rule=rule, f=F, return_report=True)
    assert rep.nonfinite.shape == (N,)


def test_list_of_rows_errors():
    x = inputs()
    with pytest.raises(RaggArgumentError, match="shape"):
        robustagg.aggregate([x[0], x[1][:-1], x[2]], rule="median", f=1)
    with pytest.raises(RaggArgumentError, match="dtype"):
        robustagg.aggregate([x[0], x[1].astype(np.float16), x[2]], rule="median", f=1)
    with pytest.raises(RaggArgumentError, match="empty"):
        robustagg.aggregate([], rule="median", f=0)
    with pytest.raises(RaggArgumentError, match="contiguous"):
        robustagg.aggregate([x[0, ::2], x[1, ::2], x[2, ::2]], rule="median", f=1)


# ----------------------------------------------------------------- dtypes

@pytest.mark.parametrize("rule", ["mean", "median", "trimmed_mean", "meamed", "krum", "geomed"])
def test_float16_numpy(rule):
    x = inputs().astype(np.float16)
    out = robustagg.aggregate(x, rule=rule, f=F)
    assert out.dtype == np.float16
    ref = robustagg.aggregate(x.astype(np.float32), rule=rule, f=F).astype(np.float64)
    close(out, ref, "float16")


@pytest.mark.skipif(not HAVE_ML_DTYPES, reason="ml_dtypes is not installed (bfloat16 in NumPy)")
def test_bfloat16_numpy():
    import ml_dtypes

    x = inputs().astype(ml_dtypes.bfloat16)
    out = robustagg.aggregate(x, rule="median", f=F)
    assert out.dtype == x.dtype


def test_unsupported_dtype_is_refused():
    with pytest.raises(RaggArgumentError, match="float32"):
        robustagg.aggregate(inputs().astype(np.float64), rule="median", f=F)
    with pytest.raises(TypeError, match="unsupported input type"):
        robustagg.aggregate("not an array", rule="median", f=F)


# ----------------------------------------------------------------- errors

def test_errors_carry_status_name_and_message():
    x = inputs(n=5)
    with pytest.raises(RaggArgumentError) as e:
        robustagg.aggregate(x, rule="krum", f=2)
    err = e.value
    assert isinstance(err, ValueError) and isinstance(err, RaggError)
    assert err.status == 2 and err.name == "RAGG_ERR_TOO_MANY_BYZANTINE"
    assert "7" in err.message  # Krum with f = 2 needs n >= 7
    with pytest.raises(RaggArgumentError, match="unknown rule"):
        robustagg.aggregate(x, rule="average", f=0)
    with pytest.raises(RaggArgumentError, match="f="):
        robustagg.aggregate(x, rule="median", f=-1)
    with pytest.raises(TypeError, match="unknown option"):
        robustagg.aggregate(x, rule="median", f=1, iterations=3)
    with pytest.raises(RaggArgumentError, match="mix"):
        robustagg.aggregate(x, rule="median", f=1, mix="shuffle")
    with pytest.raises(RaggArgumentError, match="2-D"):
        robustagg.aggregate(x[0], rule="median", f=0)


def test_library_errors_for_bad_options():
    x = inputs()
    with pytest.raises(RaggError) as e:
        robustagg.aggregate(x, rule="brute", f=F, brute_limit=3)
    assert e.value.status == 3 and not isinstance(e.value, ValueError)  # RAGG_ERR_UNSUPPORTED
    with pytest.raises(RaggArgumentError) as e:
        robustagg.aggregate(x, rule="centered_clip", f=F, tau=-1.0)
    assert e.value.status == 1 and "tau" in e.value.message
    with pytest.raises(RaggArgumentError):
        robustagg.aggregate(x, rule="monna", f=F, trusted=N)


# ----------------------------------------------------------------- report

def test_report_krum_and_multi_krum():
    x = inputs()
    x[3] += 50  # far away: never chosen
    out, rep = robustagg.aggregate(x, rule="krum", f=F, return_report=True)
    assert rep.selected.dtype == np.int32 and rep.selected.sum() == 1
    chosen = int(np.flatnonzero(rep.selected)[0])
    np.testing.assert_array_equal(out, x[chosen])
    np.testing.assert_allclose(rep.scores, krum_scores(x.astype(np.float64), F), rtol=1e-4)
    assert 3 in rep.excluded
    out, rep = robustagg.aggregate(x, rule="multi_krum", f=F, m=4, return_report=True)
    assert rep.selected.sum() == 4 and rep.selected[3] == 0
    np.testing.assert_allclose(rep.weights[rep.selected == 1], 0.25)
    close(out, x[rep.selected == 1].astype(np.float64).mean(0))


def test_report_nonfinite_and_coordinatewise():
    x = inputs()
    x[2, :5] = np.nan
    x[7, 10] = -np.inf
    out, rep = robustagg.aggregate(x, rule="median", f=F, return_report=True)
    assert rep.nonfinite.tolist() == [0, 0, 5, 0, 0, 0, 0, 1, 0, 0, 0]
    assert (rep.selected == -1).all()
    assert np.isnan(rep.weights).all()  # unwritten for coordinate-wise rules
    assert ((rep.scores >= 0) & (rep.scores <= 1)).all()
    out, rep = robustagg.aggregate(x, rule="geomed", f=F, return_report=True)
    assert rep.selected[2] == 0 and rep.selected[7] == 0
    assert rep.weights[2] == 0 and abs(rep.weights.sum() - 1) < 1e-9


# ----------------------------------------------------------------- options

def test_options_reach_the_library():
    x = inputs()
    close(robustagg.aggregate(x, rule="centered_clip", f=F, tau=0.5, iters=4),
          cc_ref(x.astype(np.float64), 0.5, 4), "float32")
    center = x.mean(0)
    close(robustagg.aggregate(x, rule="centered_clip", f=F, tau=0.5, iters=2, cc_center=center),
          cc_ref(x.astype(np.float64), 0.5, 2, center), "float32")
    close(robustagg.aggregate(x, rule="monna", f=F, trusted=5), monna_ref(x.astype(np.float64), F, 5))
    gram = robustagg.aggregate(x, rule="krum", f=F)
    direct = robustagg.aggregate(x, rule="krum", f=F, distances="direct")
    np.testing.assert_array_equal(gram, direct)
    fp32 = robustagg.aggregate(x, rule="krum", f=F, distances="gram_fp32")
    np.testing.assert_array_equal(gram, fp32)
    for rule, opts in (("median", {"mix": "nnm"}), ("krum", {"mix": "nnm"}),
                       ("krum", {"mix": "bucketing", "bucket_size": 2, "seed": 7}),
                       ("geomed", {"mix": "bucketing", "bucket_size": 3, "seed": 1}),
                       ("median", {"clip_norm": 1.0}), ("median", {"adaptive_clip": True}),
                       ("krum", {"adaptive_clip": True})):
        out = robustagg.aggregate(x, rule=rule, f=1, **opts)
        assert np.isfinite(out).all(), (rule, opts)
    clipped = robustagg.aggregate(x, rule="mean", f=0, clip_norm=1.0)
    assert np.linalg.norm(clipped) <= 1.0 + 1e-5
    with pytest.raises(RaggArgumentError, match="cc_center"):
        robustagg.aggregate(x, rule="centered_clip", f=F, cc_center=center[:-1])


def bucket_means(x, size, seed):
    """Bucketing as DESIGN.md defines it: splitmix64-driven Fisher-Yates, then group means."""
    mask = (1 << 64) - 1
    state = seed

    def splitmix64():
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    pi = list(range(len(x)))
    for i in range(len(x) - 1, 0, -1):
        j = splitmix64() % (i + 1)
        pi[i], pi[j] = pi[j], pi[i]
    return np.stack([x[pi[k:k + size]].mean(0) for k in range(0, len(x), size)])


@pytest.mark.parametrize("rule", ["mean", "median", "trimmed_mean", "meamed"])
def test_bucketing_before_coordinatewise_rule(rule):
    x = inputs()
    out = robustagg.aggregate(x, rule=rule, f=1, mix="bucketing", bucket_size=2, seed=7)
    ref = REFERENCES[rule](bucket_means(x.astype(np.float64), 2, 7), 1)
    close(out, ref)


def test_geomed_iteration_options():
    x = inputs()
    one = robustagg.aggregate(x, rule="geomed", f=F, max_iters=1)
    conv = robustagg.aggregate(x, rule="geomed", f=F, max_iters=1000, tol=0.0)
    assert not np.array_equal(one, conv)


# ----------------------------------------------------------------- torch

@needs_torch
@pytest.mark.parametrize("rule", robustagg.rules)
def test_every_rule_torch_cpu(rule):
    x = inputs()
    t = torch.from_numpy(x)
    out = robustagg.aggregate(t, rule=rule, f=F)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.device.type == "cpu"
    np.testing.assert_array_equal(out.numpy(), robustagg.aggregate(x, rule=rule, f=F))


@needs_torch
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("rule", ["median", "trimmed_mean", "meamed", "krum", "multi_krum", "geomed",
                                  "bulyan"])
def test_torch_16bit(rule, dtype):
    x = inputs()
    t = torch.from_numpy(x).to(getattr(torch, dtype))
    out = robustagg.aggregate(t, rule=rule, f=F)
    assert out.dtype == t.dtype
    ref = robustagg.aggregate(t.float().contiguous().numpy(), rule=rule, f=F).astype(np.float64)
    close(out.float().numpy(), ref, dtype)


@needs_torch
def test_torch_layouts_and_grad():
    x = torch.from_numpy(inputs(d=D + 3))
    view = x[:, 1:D + 1]  # storage offset and ld > d
    np.testing.assert_array_equal(robustagg.aggregate(view, rule="median", f=F).numpy(),
                                  robustagg.aggregate(view.contiguous(), rule="median", f=F).numpy())
    with pytest.raises(RaggArgumentError, match="contiguous"):
        robustagg.aggregate(x.t(), rule="median", f=F)
    with pytest.raises(RaggArgumentError, match="float32"):
        robustagg.aggregate(x.double(), rule="median", f=F)
    g = torch.from_numpy(inputs()).requires_grad_()
    assert robustagg.aggregate(g, rule="krum", f=F).shape == (D,)
    rows = list(torch.from_numpy(inputs()))
    out, rep = robustagg.aggregate(rows, rule="krum", f=F, return_report=True)
    assert isinstance(out, torch.Tensor) and rep.selected.sum() == 1


@pytest.mark.skipif(not (HAVE_TORCH and torch.cuda.is_available()),
                    reason="no CUDA device visible to torch")
@pytest.mark.parametrize("rule", robustagg.rules)
def test_every_rule_torch_cuda(rule):
    if not robustagg.cuda_available():
        pytest.skip("librobustagg was built without its CUDA backend")
    x = inputs()
    t = torch.from_numpy(x).cuda()
    out, rep = robustagg.aggregate(t, rule=rule, f=F, return_report=True)
    assert out.is_cuda and out.dtype == torch.float32
    cpu = robustagg.aggregate(x, rule=rule, f=F)
    np.testing.assert_allclose(out.cpu().numpy(), cpu, rtol=1e-4, atol=1e-4)
    assert rep.nonfinite.shape == (N,)


@pytest.mark.skipif(not HAVE_CUPY, reason="cupy is not installed")
@pytest.mark.parametrize("rule", ["median", "krum", "geomed"])
def test_cupy(rule):
    import cupy

    if not robustagg.cuda_available():
        pytest.skip("librobustagg was built without its CUDA backend, or no device")
    x = inputs()
    out = robustagg.aggregate(cupy.asarray(x), rule=rule, f=F)
    assert isinstance(out, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(out), robustagg.aggregate(x, rule=rule, f=F),
                               rtol=1e-4, atol=1e-4)


def test_cuda_input_without_cuda_backend_is_clear():
    if not HAVE_TORCH or not torch.cuda.is_available():
        pytest.skip("no CUDA device visible to torch")
    if robustagg.cuda_available():
        pytest.skip("librobustagg has a CUDA backend")
    with pytest.raises(RaggError, match="CUDA"):
        robustagg.aggregate(torch.zeros(3, 4, device="cuda"), rule="median", f=1)
