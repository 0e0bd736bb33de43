"""Stream search: Hough line finding, sliding windows, protocluster merging, a toy patch end to end."""

import numpy as np
import pandas as pd
import pytest

from excess.astro.streams.coords import from_patch
from excess.astro.streams.hough import best_line, distance_to_line, hough_transform, line_significance
from excess.astro.streams.search import (StreamSearchConfig, WindowResult, merge_protoclusters, search_patch,
                                         sliding_windows)
from excess.errors import ConfigError, InputError


def _disc(n, rng, radius=7.0):
    r = radius * np.sqrt(rng.uniform(size=n))
    a = rng.uniform(0, 2 * np.pi, n)
    return r * np.cos(a), r * np.sin(a)


def test_line_significance_formula():
    assert line_significance(20, 4.0, 2.0) == pytest.approx(16 / 3)
    assert line_significance(0, 0.0, 0.0) == 0.0


def test_hough_finds_an_injected_line_and_not_noise():
    rng = np.random.default_rng(0)
    xr, yr = _disc(5000, rng)
    # 70 random stars + 30 on the line lam = 0.5 phi + 1 (theta, rho from the normal form)
    x, y = _disc(70, rng)
    t = rng.uniform(-5, 5, 30)
    xl, yl = t, 0.5 * t + 1 + rng.normal(0, 0.15, 30)
    line = best_line(np.r_[x, xl], np.r_[y, yl], xr, yr, extent=8.0, width=1.0)
    theta_true = np.arctan2(1, -0.5) % np.pi  # normal of y - 0.5 x = 1
    rho_true = 1 / np.hypot(1, 0.5) * np.sign(np.sin(theta_true))
    assert abs(line.theta - theta_true) < np.radians(4) and abs(line.rho - rho_true) < 0.3
    assert line.S >= 30 and line.significance > 6
    assert (distance_to_line(xl, yl, line.theta, line.rho) < 0.5).mean() > 0.9
    # stars drawn like the reference: no line near the threshold
    nulls = [best_line(*_disc(100, np.random.default_rng(s)), xr, yr, extent=8.0).significance for s in range(8)]
    assert max(nulls) < 6
    with pytest.raises(ConfigError):
        hough_transform(x, y, xr, yr, extent=0.0)
    with pytest.raises(InputError):
        hough_transform(x, y, xr[:1], yr[:1], extent=8.0)


def test_a_compact_clump_is_not_a_line():
    rng = np.random.default_rng(3)
    xr, yr = _disc(5000, rng)
    x, y = _disc(75, rng)
    cx, cy = 5.0 + rng.normal(0, 0.15, 25), 4.0 + rng.normal(0, 0.15, 25)  # 25 stars in a 0.3-deg clump
    xs, ys = np.r_[x, cx], np.r_[y, cy]
    assert best_line(xs, ys, xr, yr, extent=8.0).significance > 6  # a plain Hough transform takes it for a line
    line = best_line(xs, ys, xr, yr, extent=8.0, segment=2.0)
    assert line.significance < 6 and line.clump_fraction <= 0.5
    t = rng.uniform(-5, 5, 30)  # an extended line still passes
    line = best_line(np.r_[x, t], np.r_[y, 0.5 * t + 1], xr, yr, extent=8.0, segment=2.0)
    assert line.significance > 6 and line.clump_fraction < 0.3


def test_background_b_follows_the_reference_density():
    rng = np.random.default_rng(1)
    xr, yr = _disc(20000, rng)
    keep = yr > -2  # a patch with a hole: the reference knows, so the selection following it has no line
    sel = rng.choice(np.flatnonzero(keep), 100, replace=False)
    line = best_line(xr[sel], yr[sel], xr[keep], yr[keep], extent=8.0)
    assert line.significance < 6


def test_sliding_windows_and_config_errors():
    cfg = StreamSearchConfig(sr_width=6, step=1, scan_range=(-14, -10))
    w = sliding_windows(np.zeros(3), cfg)
    assert w[0] == (-17.0, -11.0) and w[-1] == (-13.0, -7.0) and len(w) == 5
    assert sliding_windows(np.zeros(3), StreamSearchConfig(windows=[(1, 2)])) == [(1.0, 2.0)]
    with pytest.raises(ConfigError, match="resonant"):
        StreamSearchConfig(features=("phi", "mu_lam"))
    with pytest.raises(ConfigError, match="lo < hi"):
        StreamSearchConfig(windows=[(2, 1)])


def _cand(index, ids, sig, sr=None, theta=0.0, rho=0.0):
    from excess.astro.streams.hough import HoughLine

    line = HoughLine(theta, rho, len(ids), 1.0, 0.1, sig, 1.0)
    sr = sr or (10.0 * index, 10.0 * index + 1)  # disjoint windows unless given
    return WindowResult(index, sr, (sr[0] - 1, sr[1] + 1), 100, 100, "ok", line, tuple(ids), tuple(range(len(ids))),
                        tuple(ids))


def test_protoclusters_merge_on_shared_stars_across_windows_and_patches():
    a = _cand(0, range(0, 40), 8.0)
    b = _cand(1, range(30, 70), 11.0)  # shares 10 of 40 with a: merges
    c = _cand(2, range(500, 540), 7.0)  # unrelated
    d = _cand(0, range(60, 90), 9.0)  # another patch, shares 10 of 30 with b
    none = WindowResult(3, (0, 1), (-1, 2), 10, 10, "ok")
    pcs = merge_protoclusters({"p1": [a, b, c, none], "p2": [d]}, min_shared=0.2)
    assert len(pcs) == 2 and pcs[0].significance == 11.0 and pcs[0].best == ("p1", 1)
    assert set(pcs[0].windows) == {("p1", 0), ("p1", 1), ("p2", 0)} and len(pcs[0].members) == 90
    assert pcs[1].members == tuple(range(500, 540))
    assert len(merge_protoclusters({"p1": [a, b]}, min_shared=0.5)) == 2
    # overlapping windows of one patch with matching lines merge without shared stars; distant lines do not
    e = _cand(5, range(700, 720), 7.0, sr=(-13, -11), theta=np.radians(135.0), rho=-0.8)
    f = _cand(6, range(800, 820), 8.0, sr=(-12, -10), theta=np.radians(138.6), rho=0.1)
    g = _cand(7, range(900, 920), 8.0, sr=(-12.5, -10.5), theta=np.radians(60.0), rho=0.1)
    h = _cand(8, range(950, 970), 8.0, sr=(-30, -28), theta=np.radians(135.0), rho=-0.8)
    pcs = merge_protoclusters({"p1": [e, f, g, h]})
    assert sorted(len(p.members) for p in pcs) == [20, 20, 40]
    assert {("p1", 5), ("p1", 6)} == set(next(p for p in pcs if len(p.members) == 40).windows)


def _toy_patch(seed=0, n=6000, n_stream=150):
    """Background: disc on the sky, broad proper motions; stream: a line on the sky, cold in proper motion."""
    rng = np.random.default_rng(seed)
    phi, lam = _disc(n, rng)
    mphi, mlam = rng.normal(-5, 6, n), rng.normal(-8, 6, n)
    t = rng.uniform(-6, 6, n_stream)
    sphi, slam = t, 0.3 * t + rng.normal(0, 0.2, n_stream)
    smphi, smlam = rng.normal(-12, 0.3, n_stream), rng.normal(-9, 0.3, n_stream)
    df = pd.DataFrame({"phi": np.r_[phi, sphi], "lam": np.r_[lam, slam], "mu_phi": np.r_[mphi, smphi],
                       "mu_lam": np.r_[mlam, smlam], "is_stream": np.r_[np.zeros(n), np.ones(n_stream)].astype(int)})
    center = (150.0, 30.0)
    ra, dec, pmra, pmdec = from_patch(df.phi, df.lam, df.mu_phi, df.mu_lam, center=center)
    df = df.assign(ra=ra, dec=dec, pmra=pmra, pmdec=pmdec, parallax=0.1,
                   phot_g_mean_mag=np.r_[rng.uniform(15, 20, n), rng.uniform(17, 20, n_stream)],
                   bp_rp=np.r_[rng.uniform(0.5, 1.0, n), 0.6 + rng.normal(0, 0.03, n_stream)], ruwe=1.0,
                   source_id=np.arange(1, n + n_stream + 1))
    return df, center


def test_search_finds_the_toy_stream_with_cwola():
    df, center = _toy_patch()
    cfg = StreamSearchConfig(method="cwola", fast=True, windows=[(-11.0, -7.0)], sb_width=3.0, top_n=60,
                             n_folds=3, threshold=6.0, seed=1)
    res = search_patch(df.drop(columns=["phi", "lam", "mu_phi", "mu_lam"]), center, cfg, patch="toy")
    w = res.windows[0]
    truth = set(df.source_id[df.is_stream == 1])
    assert w.status == "ok" and w.n_sr > 100 and w.n_sb > 100
    assert len(set(w.top_ids) & truth) > 0.5 * len(w.top_ids)  # the classifier ranks the stream first
    assert w.line.significance > cfg.threshold and len(res.protoclusters) == 1
    assert len(set(res.protoclusters[0].members) & truth) / len(res.protoclusters[0].members) > 0.8
    assert res.to_dict()["n_candidates"] == 1 and res.cut_flow["all"] == len(df)
    sel = res.selected()
    assert len(sel) == len(w.top_ids) and sel.on_line.sum() == len(w.line_ids)


def test_search_input_errors():
    df, center = _toy_patch(n=300, n_stream=0)
    with pytest.raises(InputError, match="stars pass the cuts"):
        search_patch(df, center, StreamSearchConfig(top_n=200))


def test_search_runs_cathode_through_the_same_protocol():
    df, center = _toy_patch(seed=2, n=1500, n_stream=80)
    cfg = StreamSearchConfig(method="cathode", fast=True, method_params={}, windows=[(-11.0, -7.0)], sb_width=3.0,
                             top_n=40, n_folds=2, seed=0)
    res = search_patch(df, center, cfg, patch="toy")
    w = res.windows[0]
    truth = set(df.source_id[df.is_stream == 1])
    n_stream_sr = sum(1 for i in df.source_id[(df.mu_lam >= -11) & (df.mu_lam <= -7)] if i in truth)
    enrichment = (len(set(w.top_ids) & truth) / len(w.top_ids)) / (n_stream_sr / w.n_sr)
    assert w.status == "ok" and enrichment > 3  # CATHODE ranks stream stars far above their SR share
