import numpy as np


def test_plot_roc_sic(tmp_path):
    from excess.report.sic import plot_roc_sic

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(5000), np.ones(500)].astype(int)
    p = plot_roc_sic({"a": (y, rng.normal(size=y.size) + y), "b": (y, rng.normal(size=y.size) + 2 * y)},
                     tmp_path / "roc.png", title="toy")
    assert p.stat().st_size > 1000
