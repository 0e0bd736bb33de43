"""q/g jets: the EnergyFlow-format reader on files written here, bad input, and a tiny seeded generation."""

import json

import numpy as np
import pytest

from excess.data.qg import QGSettings, check_jets, generate_qg, generate_qg_chunk, load_qg, qg_pythia_config, write_qg_npz
from excess.errors import ConfigError, InputError


def _toy(n, m, rng, label):
    X = np.zeros((n, m, 4))
    for i in range(n):
        k = rng.integers(1, m + 1)
        X[i, :k, 0] = np.sort(rng.exponential(20, k))[::-1] + 0.1
        X[i, :k, 1] = rng.normal(0, 0.1, k)
        X[i, :k, 2] = rng.normal(0, 0.1, k)
        X[i, :k, 3] = rng.choice([22, 211, -211, 130], k)
    return X, np.full(n, label, dtype=float)


def test_reader_roundtrip_pads_and_limits(tmp_path):
    rng = np.random.default_rng(0)
    Xa, ya = _toy(5, 7, rng, 1)
    Xb, yb = _toy(4, 11, rng, 0)
    write_qg_npz(tmp_path / "a.npz", Xa, ya)
    write_qg_npz(tmp_path / "b.npz", Xb, yb)
    d = load_qg(tmp_path)
    assert d.X.shape == (9, 11, 4) and d.y.tolist() == [1] * 5 + [0] * 4
    np.testing.assert_array_equal(d.X[:5, :7], Xa)
    assert np.all(d.X[:5, 7:] == 0)
    np.testing.assert_array_equal(d.X[5:], Xb)
    assert len(load_qg([tmp_path / "a.npz", tmp_path / "b.npz"], max_jets=6)) == 6
    # the public files store y as floats and X as float64: same as ours
    with np.load(tmp_path / "a.npz") as f:
        assert f["X"].dtype == np.float64 and f["y"].dtype == np.float64


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda X, y: (X[..., :3], y), r"shape \(n_jets, n_particles, 4\)"),
        (lambda X, y: (np.where(np.arange(X.shape[1])[None, :, None] == 0, np.nan, X), y), "NaN"),
        (lambda X, y: (np.concatenate([X, np.zeros((1, *X.shape[1:]))]), np.r_[y, 1]), "empty jet"),
        (lambda X, y: (X, np.where(np.arange(y.size) == 0, 2, y)), r"unknown flavour label\(s\) \[2"),
        (lambda X, y: (X, y[:-1]), "y must have shape"),
    ],
)
def test_reader_bad_input_names_file(tmp_path, mutate, match):
    X, y = _toy(4, 5, np.random.default_rng(1), 1)
    X, y = mutate(X, y)
    np.savez(tmp_path / "bad.npz", X=X, y=y)
    with pytest.raises(InputError, match=match) as err:
        load_qg(tmp_path / "bad.npz")
    assert "bad.npz" in str(err.value)


def test_reader_missing_things(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_qg(tmp_path / "nope.npz")
    with pytest.raises(InputError, match="no .npz files"):
        load_qg(tmp_path)
    np.savez(tmp_path / "x.npz", X=np.zeros((1, 1, 4)))
    with pytest.raises(InputError, match="needs arrays 'X' and 'y'"):
        load_qg(tmp_path / "x.npz")
    (tmp_path / "x.npz").write_text("not a zip")
    with pytest.raises(InputError, match="not a readable"):
        load_qg(tmp_path / "x.npz")


def test_check_jets_accepts_good():
    X, y = _toy(3, 4, np.random.default_rng(2), 0)
    Xc, yc = check_jets(X, y)
    assert yc.dtype == np.int64 and Xc.shape == X.shape


def test_pythia_config_and_settings():
    q = qg_pythia_config(QGSettings(), "quark", 7)
    g = qg_pythia_config(QGSettings(), "gluon", 7)
    assert "WeakBosonAndParton:qg2gmZq = on" in q and "WeakBosonAndParton:qqbar2gmZg = on" in g
    assert "Beams:eCM = 14000" in q and "23:onIfAny = 12 14 16" in q and "PartonLevel:MPI = on" in q
    with pytest.raises(ConfigError, match="flavour"):
        qg_pythia_config(QGSettings(), "bottom", 7)
    with pytest.raises(ConfigError, match="jet_pt_min"):
        QGSettings(jet_pt_min=600)


def test_generate_tiny_seeded_and_resumable(tmp_path):
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    r1 = generate_qg(tmp_path / "qg", 6, seed=11, chunk_size=3)
    assert r1["n_chunks_generated"] == 2 and r1["n_jets_generated"] == 6
    d = load_qg(tmp_path / "qg")
    assert d.y.tolist() == [1, 1, 1, 0, 0, 0]
    pt = d.X[:, :, 0]
    jet_pt = pt.sum(1)  # constituent pT sum ~ jet pT for these narrow jets
    assert np.all((jet_pt > 450) & (jet_pt < 600))
    assert np.all(np.diff(pt, axis=1) <= 0)  # sorted by decreasing pT, zero padding last
    meta = json.loads((tmp_path / "qg" / "qg_00000_quark.npz.json").read_text())
    assert meta["seed"] == 11 and meta["n_jets"] == 3
    # rerun: nothing regenerated; other settings in the same directory are refused
    assert generate_qg(tmp_path / "qg", 6, seed=11, chunk_size=3)["n_chunks_generated"] == 0
    with pytest.raises(ConfigError, match="other settings"):
        generate_qg(tmp_path / "qg", 6, seed=12, chunk_size=3)
    # same seed, same jets
    generate_qg_chunk(QGSettings().to_dict(), "quark", 3, 11, str(tmp_path / "again.npz"))
    np.testing.assert_array_equal(load_qg(tmp_path / "again.npz").X, load_qg(tmp_path / "qg" / "qg_00000_quark.npz").X)
