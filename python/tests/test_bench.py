"""python -m robustagg.bench runs end to end (small sizes) and its peers agree where stated."""

import numpy as np

from robustagg import bench


def test_bench_small_run(capsys):
    rows = bench.main(["--n", "12", "--d", "300", "--f", "2", "--repeat", "1",
                       "--rules", "mean,median,trimmed_mean,meamed,krum,multi_krum,geomed,"
                       "centered_clip,monna,brute,caf"])
    text = capsys.readouterr().out
    assert "robustagg x" in text
    assert rows
    # Every row that compares must agree (rows by definition differ say "n/a").
    for label, impl, t, speed, agree in rows:
        assert not agree.startswith("NO"), (label, impl, agree)


def test_numpy_peers_match_their_definitions():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 40)).astype(np.float32)
    np.testing.assert_allclose(bench.np_trimmed_mean(x, 2),
                               np.sort(x.astype(np.float64), 0)[2:7].mean(0), rtol=1e-5)
    assert bench.np_krum(x, 2).shape == (40,)
