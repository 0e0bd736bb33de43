"""The mT bump hunt: run_scan takes the resonant feature by name; ANTELOPE in the anomaly API (sets and latent
columns); a tiny end to end train + score + search on synthetic sets."""

import numpy as np
import pytest

pytest.importorskip("torch")

from svj_toys import make_svj  # noqa: E402

from excess.anomaly import make_method  # noqa: E402
from excess.errors import ConfigError, InputError  # noqa: E402
from test_antelope_models import TINY_PFN, TINY_VAE  # noqa: E402

SR = (1800.0, 2200.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, svj_small):
    from excess.antelope import Antelope

    y = svj_small.events["label"].to_numpy()
    out = tmp_path_factory.mktemp("antelope") / "models"
    Antelope(pfn_params=TINY_PFN, vae_params=TINY_VAE, random_state=0, device="cpu").fit(svj_small.tracks, y).save(out)
    return out


def test_run_scan_resonant_by_name(tmp_path):
    from excess.search import run_scan
    from excess.search.synthetic import FeatureScorer, toy_events

    ev = toy_events(n_background=4000, n_signal=0, random_state=0).rename(columns={"mjj": "mT"})
    kw = dict(method=FeatureScorer(), features=["mj1"], windows=[(3300, 3700)], efficiencies=(0.2,), n_folds=2,
              global_toys=0, executor=None, n_workers=1, show_progress=False, random_state=0)
    res = run_scan(ev, resonant="mT", **kw)
    assert res.config["resonant"] == "mT" and res.windows[0].n_sr > 0
    from excess.report.figures import resonant_label
    from excess.report.search_plots import write_scan_plots

    captions = write_scan_plots(res, plot_dir=tmp_path)  # the plots and captions name the resonant feature
    assert resonant_label("mT") == "$m_T$ [GeV]" and resonant_label("mjj") == "$m_{jj}$ [GeV]"
    assert any("mT of the events" in c for c in captions.values()) and not any("mjj" in c for c in captions.values())
    with pytest.raises(InputError, match=r"lack columns \['mjj'\]"):
        run_scan(ev, **kw)  # the default is still mjj
    with pytest.raises(ConfigError, match="resonant feature"):
        run_scan(ev, resonant="mT", **{**kw, "features": ["mT", "mj1"]})


def test_config_resonant_key():
    from excess.config import parse_config

    cfg = parse_config({"data": {"demo": True}, "scan": {"resonant": "mT", "features": ["mj1"]}})
    assert cfg.scan.resonant == "mT"
    assert parse_config({"data": {"demo": True}}).scan.resonant == "mjj"
    cfg = parse_config({"data": {"demo": True}, "scan": {"resonant": "mT", "features": ["mj1"],
                                                        "background_model": "dijet_signal", "signal_width": 0.08}})
    assert (cfg.scan.background_model, cfg.scan.signal_width) == ("dijet_signal", 0.08)
    d = parse_config({"data": {"demo": True}}).scan
    assert (d.background_model, d.signal_width) == ("efficiency", 0.04)  # the mjj scan's defaults stay
    with pytest.raises(ConfigError, match="signal_width"):
        parse_config({"data": {"demo": True}, "scan": {"background_model": "dijet_signal", "signal_width": 0.6}})
    with pytest.raises(ConfigError, match="resonant feature"):
        parse_config({"data": {"demo": True}, "scan": {"resonant": "mT", "features": ["mT"]}})


def test_antelope_method_sets_and_latent_agree(trained, svj_small):
    from excess.nn.io import load_model

    tracks, m = svj_small.tracks, svj_small.events["mT"].to_numpy()
    frozen = make_method("antelope", pfn=str(trained / "pfn"), vae=str(trained / "vae"), device="cpu")
    s_sets = frozen.fit(tracks, m, sr=SR).score_samples(tracks, m)
    z = load_model(trained / "pfn").latent(tracks)
    s_lat = make_method("antelope", vae=str(trained / "vae"), device="cpu").fit(z, m, sr=SR).score_samples(z, m)
    np.testing.assert_allclose(s_sets, s_lat, rtol=1e-6)
    # trained in the window's sidebands (data-driven), on the latent columns
    est = make_method("antelope", fast=True, random_state=0, device="cpu").fit(z, m, sr=SR)
    assert np.all(np.isfinite(est.score_samples(z, m)))
    with pytest.raises(ConfigError, match="need pfn="):
        make_method("antelope", device="cpu").fit(tracks, m, sr=SR)
    with pytest.raises(InputError, match="trained on 8 latent features, got 3"):
        make_method("antelope", vae=str(trained / "vae"), device="cpu").fit(z[:, :3], m, sr=SR)
    # bad sets through the anomaly API: the same one clear error as the models give
    bad = tracks[:300].copy()
    bad[4, 0, 2] = np.nan
    with pytest.raises(InputError, match=r"NaN/inf in a track \(first events \[4\], columns \['phi'\]\)"):
        frozen.fit(bad, m[:300], sr=SR)
    bad = tracks[:300].copy()
    bad[7] = 0
    with pytest.raises(InputError, match=r"no track \(all padding; first events \[7\]\)"):
        frozen.score_samples(bad, m[:300])
    zn = z.copy()
    zn[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        make_method("antelope", vae=str(trained / "vae"), device="cpu").fit(zn, m, sr=SR)


def test_tiny_end_to_end_search(trained, tmp_path):
    from excess.antelope.data import SVJData
    from excess.antelope.search import run_antelope_search

    d = make_svj(n_bkg=3000, points=((2500.0, 0.3, 20.0),), n_sig=120, seed=5)
    m = run_antelope_search(SVJData(d.events, d.tracks), trained, tmp_path / "run", efficiencies=(0.1,),
                            window_options={"width": 400, "step": 400, "sideband_width": 400, "anchor": 2000},
                            n_folds=2, global_toys=5, workers=1, show_progress=False, device="cpu")
    for f in ("metrics.json", "report.html", "truth.json", "plots/significance_scan.png", "plots/mt_spectra.png"):
        assert (tmp_path / "run" / f).exists(), f
    assert m["config"]["resonant"] == "mT"
    assert m["best"] is not None and 1400 <= m["best"]["m_res"] <= 2800  # the injected bump at ~2000 GeV
    assert m["truth_best_window"]["inclusive"]["S"] > 0
    html = (tmp_path / "run" / "report.html").read_text()
    assert "antelope" in html


def test_search_bad_windows_leave_nothing(trained, tmp_path):
    from excess.antelope.data import SVJData
    from excess.antelope.search import run_antelope_search

    d = make_svj(n_bkg=300, points=(), seed=6)
    with pytest.raises(ConfigError, match="mT windows: no window of width 5000"):
        run_antelope_search(SVJData(d.events, d.tracks), trained, tmp_path / "run", window_options={"width": 5000},
                            device="cpu")
    assert not (tmp_path / "run").exists()
