"""Several patches of one star file: tiling, the per-patch search, protoclusters merged across patches, the CLI."""

import json

import numpy as np
import pandas as pd
import pytest

from excess.astro.streams.coords import from_patch
from excess.astro.streams.io import write_gaia
from excess.astro.streams.search import StreamSearchConfig
from excess.astro.streams.survey import search_patches, tile_region
from excess.astro.streams.threshold import calibrate_threshold
from excess.cli.main import main
from excess.errors import ConfigError, InputError

C0 = (150.0, 30.0)


def _toy_sky(seed=0, n=8000, n_stream=220, radius=9.0):
    """A disc of background stars around C0 and a 16-degree stream through it, cold in proper motion."""
    rng = np.random.default_rng(seed)
    r, a = radius * np.sqrt(rng.uniform(size=n)), rng.uniform(0, 2 * np.pi, n)
    t = rng.uniform(-8, 8, n_stream)
    phi, lam = np.r_[r * np.cos(a), t], np.r_[r * np.sin(a), 0.2 * t + rng.normal(0, 0.2, n_stream)]
    mphi = np.r_[rng.normal(-5, 6, n), rng.normal(-12, 0.3, n_stream)]
    mlam = np.r_[rng.normal(-8, 6, n), rng.normal(-9, 0.3, n_stream)]
    ra, dec, pmra, pmdec = from_patch(phi, lam, mphi, mlam, center=C0)
    return pd.DataFrame({
        "source_id": np.arange(1, n + n_stream + 1), "ra": ra, "dec": dec, "pmra": pmra, "pmdec": pmdec,
        "parallax": 0.1, "phot_g_mean_mag": np.r_[rng.uniform(15, 20, n), rng.uniform(17, 20, n_stream)],
        "bp_rp": np.r_[rng.uniform(0.5, 1.0, n), 0.6 + rng.normal(0, 0.03, n_stream)], "ruwe": 1.0,
        "is_stream": np.r_[np.zeros(n), np.ones(n_stream)].astype(int)})


def _two_centres():
    ra, dec = from_patch(np.array([-2.5, 2.5]), np.array([-0.5, 0.5]), center=C0)
    return [(float(ra[0]), float(dec[0])), (float(ra[1]), float(dec[1]))]


def test_tile_region_covers_the_region():
    c = tile_region((140, 160), (30, 40), spacing=10)
    decs = sorted({d for _, d in c})
    assert decs == [30.0, 40.0]
    row = sorted(r for r, d in c if d == 40.0)
    assert row[0] == 140.0 and row[-1] == 160.0
    assert np.all(np.diff(row) <= 10 / np.cos(np.radians(40)) + 1e-9)  # no gap wider than the spacing on the sky
    assert tile_region((350, 10), (0, 0), spacing=10) == [(350.0, 0.0), (0.0, 0.0), (10.0, 0.0)]  # wraps through 0
    full = tile_region((0, 360), (0, 0), spacing=30)
    assert len(full) == 12 and len({r for r, _ in full}) == 12
    with pytest.raises(ConfigError):
        tile_region((0, 10), (10, 0))


def test_search_patches_merges_the_stream_across_two_patches():
    stars = _toy_sky()
    cfg = StreamSearchConfig(method="cwola", fast=True, windows=[(-11.0, -7.0)], sb_width=3.0, top_n=50, n_folds=3,
                             threshold=5.0, seed=1)
    far = (float(C0[0] + 60), float(C0[1]))  # no stars there: skipped, with the reason
    survey = search_patches(stars, [*_two_centres(), far], cfg, radius=5.0)
    assert isinstance(survey.patches["p02"], str) and "skipped" in survey.patches["p02"]
    done = survey.searched()
    assert set(done) == {"p00", "p01"} and all(r.config.cuts.radius == 5.0 for r in done.values())
    truth = set(stars.source_id[stars.is_stream == 1])
    for r in done.values():
        assert r.windows[0].line.significance > cfg.threshold, r.windows[0].line
    # each patch alone gives one protocluster; across patches they share stars and merge into one
    assert len(survey.protoclusters) == 1, [p.to_dict() for p in survey.protoclusters]
    pc = survey.protoclusters[0]
    assert {w[0] for w in pc.windows} == {"p00", "p01"}
    assert len(pc.members) > max(len(r.protoclusters[0].members) for r in done.values())
    assert len(set(pc.members) & truth) / len(pc.members) > 0.8
    d = survey.to_dict()
    assert d["protoclusters"][0]["patches"] == ["p00", "p01"] and d["patches"][2]["status"].startswith("skipped")


def test_streams_survey_cli(tmp_path, capsys):
    stars = _toy_sky(seed=2)
    path = tmp_path / "sky.parquet"
    write_gaia(stars, path)
    (a_ra, a_dec), (b_ra, b_dec) = _two_centres()
    run = tmp_path / "survey"
    args = ["-q", "streams", "survey", str(path), "-o", str(run), "--center", str(a_ra), str(a_dec), "--center",
            str(b_ra), str(b_dec), "--radius", "5", "--fast", "--window", "-11", "-7", "--top-n", "50",
            "--n-folds", "3", "--threshold", "5"]
    assert main(args) == 0
    assert "2 of 2 patch(es) searched" in capsys.readouterr().out
    for f in ("config.json", "provenance.json", "survey.json", "protoclusters.csv", "report.html", "plots/sky.png",
              "patches/p00/report.html", "patches/p01/search.json", "patches/p01/selected.csv"):
        assert (run / f).exists(), f
    d = json.loads((run / "survey.json").read_text())
    assert [p["status"] for p in d["patches"]] == ["ok", "ok"]
    members = pd.read_csv(run / "protoclusters.csv")
    assert len(members) == d["protoclusters"][0]["n_members"] + sum(p["n_members"] for p in d["protoclusters"][1:])
    assert "patches/p00/report.html" in (run / "report.html").read_text()
    # a patch subfolder is an ordinary run directory: evaluate works on it (disc cut kept in its config)
    assert main(["-q", "streams", "evaluate", str(run / "patches" / "p00")]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["n_stream_after_cuts"] < int(stars.is_stream.sum())
    # a finished survey is not replaced without --force; no centres is a usage error; nothing to search is an error
    assert main(args) == 1 and "--force" in capsys.readouterr().err
    assert main(["streams", "survey", str(path), "-o", str(tmp_path / "s2")]) == 2
    assert main(["streams", "survey", str(path), "-o", str(tmp_path / "s3"), "--center", "10", "-40"]) == 1
    assert "no patch has enough stars" in capsys.readouterr().err and not (tmp_path / "s3").exists()
    # --threshold auto: calibrated on a finished run's windows (here the survey itself: then no line passes)
    assert main(["streams", "survey", str(path), "-o", str(tmp_path / "s4"), "--center", "1", "2",
                 "--threshold", "auto"]) == 2
    auto = tmp_path / "auto"
    assert main([*args[:5], str(auto), *args[6:-2], "--threshold", "auto", "--null-run", str(run)]) == 0
    cal = json.loads((auto / "threshold_calibration.json").read_text())
    best = max(p["best_significance"] for p in d["patches"])
    assert cal["n_windows"] == 2 and cal["null_max"] == best and cal["threshold"] > best
    assert json.loads((auto / "survey.json").read_text())["protoclusters"] == []


def _fake_run(path, sigs):
    path.mkdir(parents=True)
    windows = [{"index": k, "line": None if s is None else {"significance": s}} for k, s in enumerate(sigs)]
    (path / "search.json").write_text(json.dumps({"windows": windows}))
    return path


def test_calibrate_threshold_from_null_runs(tmp_path):
    a = _fake_run(tmp_path / "a", [3.5, 4.3, None, 4.9])
    b = _fake_run(tmp_path / "b", [2.9, 2.8, 3.3])
    cal = calibrate_threshold([a, b])
    assert cal["n_windows"] == 6 and cal["null_max"] == 4.9 and 4.9 < cal["threshold"] < 4.9 + 1e-9
    assert calibrate_threshold([a, b], quantile=0.5)["threshold"] == pytest.approx(3.5)
    with pytest.raises(ConfigError):
        calibrate_threshold(a, quantile=0)
    with pytest.raises(InputError, match="not a stream-search"):
        calibrate_threshold(tmp_path)


def test_cross_patch_merge_counts_only_the_stars_the_other_patch_holds():
    from excess.astro.streams.hough import HoughLine
    from excess.astro.streams.search import WindowResult, merge_protoclusters

    def cand(ids):
        line = HoughLine(0.0, 0.0, len(ids), 1.0, 0.1, 8.0, 1.0)
        return WindowResult(0, (0.0, 1.0), (-1.0, 2.0), 100, 100, "ok", line, tuple(ids), tuple(ids), tuple(ids))

    # one stream, 90 line stars in each patch; the patches overlap over ids 60-89 of which 15 are in both lines
    a, b = cand(range(0, 90)), cand([*range(60, 75), *range(200, 275)])
    assert len(merge_protoclusters({"p00": [a], "p01": [b]})) == 2  # 15 / 90 < 20 %
    visible = {"p00": set(range(0, 90)) | set(range(200, 215)), "p01": set(range(60, 300))}
    pcs = merge_protoclusters({"p00": [a], "p01": [b]}, visible=visible)  # 15 / min(30, 30) >= 20 %
    assert len(pcs) == 1 and len(pcs[0].members) == 165
    far = cand(range(1000, 1090))  # nothing shared: never merged
    assert len(merge_protoclusters({"p00": [a], "p01": [far]}, visible={"p00": set(), "p01": set()})) == 2
