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
