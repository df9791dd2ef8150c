"""A short run of python -m robustagg.demo: robust rules beat the mean under sign flip."""

import importlib.util
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                                reason="scikit-learn is not installed (the demo's data set)")


def test_robust_rules_beat_the_mean_under_sign_flip(tmp_path):
    from robustagg import demo

    args = demo.parse_args(["--rules", "mean,median,trimmed_mean,krum,geomed,caf",
                            "--attacks", "none,sign_flip,nan", "--steps", "80",
                            "--device", "cpu", "--quiet", "--out", str(tmp_path)])
    res = demo.run(args)
    acc = res["acc"]
    assert acc[("mean", "none")] > 0.85
    assert acc[("mean", "sign_flip")] < 0.3
    assert acc[("mean", "nan")] < 0.3
    for rule in ("median", "trimmed_mean", "krum", "geomed", "caf"):
        for attack in ("sign_flip", "nan"):
            assert acc[(rule, attack)] > acc[("mean", attack)] + 0.5, (rule, attack)
    csv_path, png_path = demo.write_outputs(res, str(tmp_path), args)
    assert os.path.getsize(csv_path) > 0
    if importlib.util.find_spec("matplotlib") is not None:
        assert os.path.getsize(png_path) > 0


def test_cli_prints_the_table_and_skips_infeasible_rules(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "robustagg.demo", "--rules", "mean,bulyan,brute",
         "--workers", "10", "--attacks", "none,alie", "--steps", "10", "--quiet", "--device", "cpu",
         "--alpha", "0.5", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "needs n >= 11" in proc.stdout  # Bulyan with f = 2 on 10 workers
    assert "brute" in proc.stdout and "accuracy.csv" in proc.stdout
    assert (tmp_path / "accuracy.csv").exists()


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_model_path_on_cpu(tmp_path, monkeypatch):
    """The --device cuda code path (torch tensors end to end), run on the CPU."""
    from robustagg import demo

    monkeypatch.setattr(demo, "make_ops", lambda device: demo.TorchOps("cpu"))
    args = demo.parse_args(["--rules", "mean,median,centered_clip", "--attacks",
                            "sign_flip,alie,nan,label_flip", "--steps", "60", "--quiet",
                            "--out", str(tmp_path)])
    res = demo.run(args)
    acc = res["acc"]
    assert acc[("mean", "sign_flip")] < 0.3 and acc[("median", "sign_flip")] > 0.8
    assert acc[("centered_clip", "nan")] > 0.8


# ----------------------------------------------------------------- pre-steps and optimal attacks

def test_pre_steps_and_optimal_attacks_short_run(tmp_path):
    from robustagg import demo

    args = demo.parse_args(["--rules", "mean,median,krum", "--attacks", "none,alie_opt,ipm_opt",
                            "--pre", "none,arc,nnm,arc+nnm,bucketing", "--steps", "8",
                            "--alpha", "0.5", "--device", "cpu", "--quiet",
                            "--out", str(tmp_path)])
    res = demo.run(args)
    assert res["rules"] == ["mean", "median", "median+arc", "median+nnm", "median+arc+nnm",
                            "median+bucketing", "krum", "krum+arc", "krum+nnm", "krum+arc+nnm",
                            "krum+bucketing"]
    assert res["attacks"] == ["none", "alie_opt", "ipm_opt"]
    # Bucketing leaves ceil(11/2) = 6 inputs: too few for Krum at f = 2 (needs 7).
    assert res["skipped"]["krum+bucketing"] == "6 buckets, needs >= 7"
    assert all(res["acc"][("krum+bucketing", a)] is None for a in res["attacks"])
    for label in res["rules"]:
        if label != "krum+bucketing":
            for a in res["attacks"]:
                assert 0.0 <= res["acc"][(label, a)] <= 1.0, (label, a)
    table = demo.format_table(res)
    assert "median+arc+nnm" in table and "6 buckets, needs >= 7" in table
    csv_path, _ = demo.write_outputs(res, str(tmp_path), args)
    text = open(csv_path).read().splitlines()
    assert text[0].endswith(",pre")
    assert "median,alie_opt," in "\n".join(text) and any(t.endswith(",arc+nnm") for t in text)


def test_pre_options_and_row_labels():
    from robustagg import demo

    args = demo.parse_args(["--bucket-size", "3", "--seed", "4"])
    assert demo.pre_options("none", args, 0) == {}
    assert demo.pre_options("arc", args, 0) == {"adaptive_clip": True}
    assert demo.pre_options("nnm", args, 0) == {"mix": "nnm"}
    assert demo.pre_options("arc+nnm", args, 0) == {"adaptive_clip": True, "mix": "nnm"}
    b0, b1 = demo.pre_options("bucketing", args, 0), demo.pre_options("bucketing", args, 1)
    assert b0["mix"] == "bucketing" and b0["bucket_size"] == 3 and b0["seed"] != b1["seed"]
    assert demo.row_label("krum", "none") == "krum"
    assert demo.row_label("krum", "arc+nnm") == "krum+arc+nnm"
    assert demo.rule_feasible("bulyan", 11, 2, 10**5, "nnm") is None
    assert demo.rule_feasible("median", 11, 2, 10**5, "bucketing", 3) == "4 buckets, needs >= 5"


def test_optimal_attacks_pick_the_worst_scale_on_the_grid():
    import numpy as np

    import robustagg
    from robustagg import demo

    rng = np.random.default_rng(1)
    honest = (rng.standard_normal((9, 50)) + 1.0).astype(np.float32)
    mean = honest.mean(0)
    ops = demo.NumpyOps()
    for attack, scales in (("alie_opt", demo.ALIE_OPT_SCALES), ("ipm_opt", demo.IPM_OPT_SCALES)):
        for rule, opts in (("mean", {}), ("median", {}), ("krum", {"mix": "nnm"}),
                           ("trimmed_mean", {"adaptive_clip": True})):
            def agg(v, rule=rule, opts=opts):
                return robustagg.aggregate(v, rule=rule, f=2, **opts)

            byz, scale = demo.optimal_byzantine_vectors(ops, attack, honest, 2, agg)
            assert byz.shape == (2, 50) and scale in scales
            dists = []
            for s in scales:
                v = mean - s * honest.std(0) if attack == "alie_opt" else -s * mean
                sent = np.concatenate([honest, np.stack([v, v])])
                dists.append(float(((agg(sent) - mean) ** 2).sum()))
            assert scale == scales[int(np.argmax(dists))], (attack, rule)
    # Against the mean, IPM's damage grows with eps: the largest on the grid wins.
    _, scale = demo.optimal_byzantine_vectors(
        ops, "ipm_opt", honest, 2, lambda v: robustagg.aggregate(v, rule="mean", f=2))
    assert scale == max(demo.IPM_OPT_SCALES)


def test_cli_pre_with_and_without_nnm(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "robustagg.demo", "--rules", "mean,krum,caf", "--pre", "none,nnm",
         "--attacks", "ipm_opt", "--steps", "5", "--quiet", "--device", "cpu",
         "--alpha", "0.5", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("rule"))
    rows = [line.split()[0] for line in lines[head + 1:head + 6]]
    assert rows == ["mean", "krum", "krum+nnm", "caf", "caf+nnm"], proc.stdout
    assert "pre-steps none,nnm" in proc.stdout


def test_unknown_pre_step_or_attack_is_refused():
    from robustagg import demo

    with pytest.raises(SystemExit, match="unknown pre-step 'nnm\\+arc'"):
        demo.run(demo.parse_args(["--pre", "nnm+arc", "--quiet"]))
    with pytest.raises(SystemExit, match="unknown attack 'alie_best'"):
        demo.run(demo.parse_args(["--attacks", "alie_best", "--quiet"]))
