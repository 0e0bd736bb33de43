"""Semi-visible-jet samples: Hidden Valley r_inv, mT, track layout, resume, reader errors."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from excess.data.io import read_events, write_events
from excess.data.svj import (
    EVENT_COLUMNS,
    MAX_TRACKS_PER_JET,
    N_TRACKS,
    SVJSample,
    SVJSettings,
    SVJSource,
    _visible,
    concat_svj,
    dark_meson_decays,
    generate_svj,
    inject_svj,
    read_svj,
    svj_pythia_config,
    track_array,
    transverse_mass,
    write_svj,
)
from excess.errors import ConfigError, InputError


@pytest.mark.parametrize("r_inv", [0.2, 0.7])
def test_hidden_valley_invisible_fraction_matches_r_inv(r_inv):
    src = SVJSource(SVJSettings(process="signal", m_zprime=1500.0, r_inv=r_inv), seed=11)
    n_dec = n_inv = 0
    for _ in range(2):
        counts, ids, status, d1, mom, vtx = src.next_batch(20)
        a, b = dark_meson_decays(counts, ids, d1)
        n_dec, n_inv = n_dec + a, n_inv + b
        # nothing from the dark sector (or neutrinos) is ever visible
        vis = _visible(ids, status)
        assert not np.any(np.abs(ids[vis]) >= 4900000)
        assert not np.any(np.isin(np.abs(ids[vis]), (12, 14, 16, 51, 53)))
        # the stable dark-matter states are final-state particles
        assert np.any(np.isin(np.abs(ids[status > 0]), (51, 53)))
    assert n_dec > 300  # enough dark mesons for a ~2.5 % binomial error
    frac = n_inv / n_dec
    assert abs(frac - r_inv) < 0.06, (frac, r_inv, n_dec)


def test_pythia_config_settings():
    cfg = svj_pythia_config(SVJSettings(m_zprime=3000.0, r_inv=0.5, m_dark=20.0), seed=3)
    assert "HiddenValley:ffbar2Zv = on" in cfg and "4900023:m0 = 3000" in cfg
    assert "4900101:m0 = 10" in cfg and "4900111:m0 = 20" in cfg
    assert "HiddenValley:probVector = 0.75" in cfg and "HiddenValley:nFlav = 2" in cfg
    assert "4900111:oneChannel = 1 0.5 0 51 -51" in cfg and "4900113:oneChannel = 1 0.5 0 53 -53" in cfg
    lam = 3.2 * 20**0.8
    assert f"HiddenValley:Lambda = {lam:.6g}" in cfg
    qcd = svj_pythia_config(SVJSettings(process="qcd", pthat_min=250.0), seed=3)
    assert "PhaseSpace:pTHatMin = 250" in qcd and not any("HiddenValley" in c for c in qcd)
    for bad in (dict(r_inv=1.5), dict(m_zprime=20000.0), dict(m_dark=0.0), dict(process="ttbar")):
        with pytest.raises(ConfigError):
            SVJSettings(**bad)


def test_transverse_mass_definition():
    rng = np.random.default_rng(0)
    n = 200
    # two massive jets and one massless invisible particle with a longitudinal momentum
    j = rng.normal(0, 400, (2, n, 3))
    mj = rng.uniform(10, 100, (2, n))
    ej = np.sqrt((j**2).sum(-1) + mj**2)
    nu = rng.normal(0, 300, (n, 3))
    jj = j.sum(0)
    ejj = ej.sum(0)
    mjj = np.sqrt(ejj**2 - (jj**2).sum(-1))
    mt = transverse_mass(mjj, jj[:, 0], jj[:, 1], nu[:, 0], nu[:, 1])
    # the definition written out: mT^2 = (E_T,jj + MET)^2 - |pT_jj + MET|^2
    et = np.sqrt(mjj**2 + jj[:, 0] ** 2 + jj[:, 1] ** 2) + np.hypot(nu[:, 0], nu[:, 1])
    ref = np.sqrt(et**2 - (jj[:, 0] + nu[:, 0]) ** 2 - (jj[:, 1] + nu[:, 1]) ** 2)
    np.testing.assert_allclose(mt, ref, rtol=1e-9)
    # mT never exceeds the invariant mass of jets + invisible particle, and equals mjj without MET
    m_tot = np.sqrt((ejj + np.linalg.norm(nu, axis=1)) ** 2 - ((jj + nu) ** 2).sum(-1))
    assert np.all(mt <= m_tot * (1 + 1e-9))
    np.testing.assert_allclose(transverse_mass(mjj, jj[:, 0], jj[:, 1], 0.0, 0.0), mjj, rtol=1e-12)
    # E_T,jj >= |pT,jj| so mT >= mjj for any MET direction
    assert np.all(mt >= mjj * (1 - 1e-12))


def test_track_array_layout_sorting_padding():
    # event 0: 3 tracks in jet 1 (index 1), 2 in jet 0; event 2: 100 tracks in jet 0; event 1 none
    ev = np.r_[0, 0, 0, 0, 0, np.full(100, 2)]
    jet = np.r_[1, 0, 1, 0, 1, np.zeros(100, int)]
    pt = np.r_[5.0, 2.0, 9.0, 30.0, 1.5, np.arange(1, 101, dtype=float)]
    other = [pt * 0 + k for k in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    t, counts = track_array(ev, jet, pt, *other, n_events=3)
    assert t.shape == (3, N_TRACKS, 8) and t.dtype == np.float32
    np.testing.assert_array_equal(counts, [[2, 3], [0, 0], [100, 0]])
    # leading jet's block first, each block sorted by pT descending, jet column 0/1
    np.testing.assert_allclose(t[0, :2, 0], [30.0, 2.0])
    np.testing.assert_allclose(t[0, MAX_TRACKS_PER_JET:MAX_TRACKS_PER_JET + 3, 0], [9.0, 5.0, 1.5])
    assert np.all(t[0, MAX_TRACKS_PER_JET:MAX_TRACKS_PER_JET + 3, 7] == 1)
    assert np.all(t[0, :2, 7] == 0)
    # padding rows are all zeros; the mask is pt > 0
    mask = t[..., 0] > 0
    assert mask[0].sum() == 5 and not mask[1].any()
    assert np.all(t[~mask] == 0)
    # truncation keeps the 80 hardest tracks
    np.testing.assert_allclose(t[2, :MAX_TRACKS_PER_JET, 0], np.arange(100, 20, -1))
    assert not mask[2, MAX_TRACKS_PER_JET:].any()


@pytest.fixture(scope="module")
def small_sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("svj") / "svj_mz2000_rinv0.3"
    summary = generate_svj(30, out, process="signal", m_zprime=2000.0, r_inv=0.3, seed=5, chunk_size=15,
                           n_workers=1, show_progress=False, batch_size=60)
    return out, summary


def test_generate_read_and_resume(small_sample):
    out, summary = small_sample
    assert summary["n_chunks"] == 2 and summary["n_chunks_skipped"] == 0
    s = read_svj(out)
    assert len(s) == 30 and s.tracks.shape == (30, N_TRACKS, 8)
    assert list(s.events.columns) == list(EVENT_COLUMNS)
    ev = s.events
    assert (ev["label"] == 1).all() and (ev["m_zprime"] == 2000).all() and np.allclose(ev["r_inv"], 0.3)
    # the preselection, as documented
    assert (ev["met"] > 100).all() and (ev["dphi_min"] < 0.8).all()
    assert (ev["pt_j1"] >= ev["pt_j2"]).all() and (ev["pt_j2"] > 200).all()
    assert ((ev["eta_j1"] - ev["eta_j2"]).abs() < 1.5).all()
    assert (ev["mT"] >= ev["mjj"] * (1 - 1e-5)).all()
    # tracks: sorted within each jet block, jet column, ntrk counts the (untruncated) tracks
    m = s.mask
    assert m.sum(axis=1).min() >= 3
    for j in (0, 1):
        blk = s.tracks[:, j * MAX_TRACKS_PER_JET:(j + 1) * MAX_TRACKS_PER_JET]
        assert np.all(np.diff(blk[..., 0], axis=1) <= 0)
        bm = blk[..., 0] > 0
        assert np.all(blk[..., 7][bm] == j)
        np.testing.assert_array_equal(bm.sum(1), np.minimum(ev[f"ntrk_j{j + 1}"], MAX_TRACKS_PER_JET))
    assert np.all(s.tracks[..., 0][m] > 1.0)  # the track pT threshold
    p = s.tracks[..., 0][m] * np.cosh(s.tracks[..., 1][m])
    np.testing.assert_allclose(np.abs(s.tracks[..., 6][m]), 1 / p, rtol=1e-4)
    # the event table is an excess event file: the shared reader sees it
    assert len(read_events(out)) == 30
    meta = s.metadata
    assert meta["settings"]["r_inv"] == 0.3
    # rerun: both chunks are skipped, files untouched
    mtimes = sorted(p.stat().st_mtime_ns for p in out.glob("chunk-*.h5"))
    again = generate_svj(30, out, process="signal", m_zprime=2000.0, r_inv=0.3, seed=5, chunk_size=15,
                         n_workers=1, show_progress=False, batch_size=60)
    assert again["n_chunks_skipped"] == 2
    assert sorted(p.stat().st_mtime_ns for p in out.glob("chunk-*.h5")) == mtimes
    with pytest.raises(InputError, match="other settings"):
        generate_svj(30, out, process="signal", m_zprime=3000.0, r_inv=0.3, seed=5, chunk_size=15, n_workers=1,
                     show_progress=False)


def test_concat_and_inject(small_sample):
    s = read_svj(small_sample[0])
    bkg = SVJSample(s.events.assign(label=np.int8(0)), s.tracks.copy())
    mix = inject_svj(bkg, s, 7, random_state=1)
    assert len(mix) == 37 and int(mix.events["label"].sum()) == 7
    again = inject_svj(bkg, s, 7, random_state=1)
    np.testing.assert_array_equal(mix.tracks, again.tracks)
    assert len(concat_svj([s, s])) == 60
    with pytest.raises(ConfigError):
        inject_svj(bkg, s, 31)


def _write_raw(path, events, tracks):
    write_events(events, path)
    with h5py.File(path, "a") as f:
        f.create_dataset("tracks", data=tracks)


def _events(n):
    return pd.DataFrame({c: np.ones(n, np.float32) for c in EVENT_COLUMNS})


def test_reader_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_svj(tmp_path / "nope.h5")
    good = np.zeros((4, N_TRACKS, 8), np.float32)
    good[:, 0, 0] = 5.0
    cases = {
        "shape": (good[:, :100], "shape"),
        "ragged": (good[:3], "track rows for 4 events"),
        "nan": (np.where(np.arange(8) == 1, np.nan, good).astype(np.float32), "NaN"),
        "padding": (np.concatenate([good[:3], np.zeros((1, N_TRACKS, 8), np.float32)]), "all padding"),
    }
    for name, (tracks, msg) in cases.items():
        p = tmp_path / f"{name}.h5"
        _write_raw(p, _events(4), tracks)
        with pytest.raises(InputError, match=msg):
            read_svj(p)
    p = tmp_path / "notracks.h5"
    write_events(_events(4), p)
    with pytest.raises(InputError, match="'tracks'"):
        read_svj(p)
    p = tmp_path / "nocol.h5"
    _write_raw(p, _events(4).drop(columns=["mT"]), good)
    with pytest.raises(InputError, match="mT"):
        read_svj(p)
    with pytest.raises(InputError, match="no chunk"):
        read_svj(tmp_path)
    # the writer refuses what the reader would refuse, and writes nothing
    with pytest.raises(InputError, match="all padding"):
        write_svj(SVJSample(_events(4), cases["padding"][0]), tmp_path / "w.h5")
    assert not (tmp_path / "w.h5").exists()
    write_svj(SVJSample(_events(4), good, {"note": "x"}), tmp_path / "w.h5")
    r = read_svj(tmp_path / "w.h5")
    np.testing.assert_array_equal(r.tracks, good)
    with h5py.File(tmp_path / "w.h5") as f:
        assert f.attrs["svj_format"] == "excess-svj/1"
        assert json.loads(f["tracks"].attrs["columns"])[0] == "pt"


def test_cli_grid_and_bad_input(tmp_path, capsys):
    from excess.cli.main import main

    rc = main(["-q", "svj", "grid", "-n", "5", "-o", str(tmp_path / "grid"), "--m-zprime", "3000", "--r-inv", "0.5",
               "--chunk-size", "5", "-j", "1"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["n_events"] == 5 and out[0]["settings"]["m_zprime"] == 3000.0
    s = read_svj(tmp_path / "grid" / "svj_mz3000_rinv0.5")
    assert len(s) == 5 and np.allclose(s.events["r_inv"], 0.5)
    rc = main(["svj", "generate", "-n", "5", "-o", str(tmp_path / "bad"), "--r-inv", "1.5"])
    err = capsys.readouterr().err
    assert rc == 1 and "r_inv" in err and not (tmp_path / "bad").exists()


def test_chunk_is_reproducible(tmp_path):
    from excess.data.svj import generate_svj_chunk

    d = SVJSettings(process="signal", m_zprime=3000.0, r_inv=0.5).to_dict()
    for name in ("a.h5", "b.h5"):
        generate_svj_chunk(d, 6, 77, str(tmp_path / name), batch_size=40)
    a, b = read_svj(tmp_path / "a.h5"), read_svj(tmp_path / "b.h5")
    np.testing.assert_array_equal(a.tracks, b.tracks)
    pd.testing.assert_frame_equal(a.events, b.events)
