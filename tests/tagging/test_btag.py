"""b-tagging: truth labelling, impact-parameter signs, input checks, taggers, and a tiny generate+train+evaluate."""

import json

import numpy as np
import pytest

from excess.data.btag import (BTAG_FEATURES, _last_in_chain, check_btag_inputs, flavour_labels, has_quark,
                              signed_impact_parameters, track_grade, true_impact_parameters)
from excess.errors import ConfigError, InputError
from excess.tagging.jets.btag import (DeepSetBTagger, IPLikelihoodTagger, RNNIPTagger, b_discriminant,
                                      make_btagger)


# ---------------------------------------------------------------------------------------------- labelling


def test_open_flavour_hadrons():
    ids = np.array([511, -521, 513, 5122, -5232, 10511, 421, -411, 4122, 443, 553, 5, 4, 5101, 211, 2212, 3122])
    b = has_quark(ids, 5)
    c = has_quark(ids, 4)
    assert b.tolist() == [True] * 6 + [False] * 11
    assert c.tolist() == [False] * 6 + [True] * 3 + [False] * 8  # J/psi, Upsilon, quarks, diquarks are not


def test_last_in_chain_on_a_constructed_record():
    # 0 system; 1 B*0 -> (2 B0, 3 gamma); B0 -> (4 D-, 5 pi+); D- -> (6 K+, 7 pi-, 8 pi-)
    ids = np.array([90, 513, 511, 22, -411, 211, 321, -211, -211])
    d1 = np.array([0, 2, 4, 0, 6, 0, 0, 0, 0])
    d2 = np.array([0, 3, 5, 0, 8, 0, 0, 0, 0])
    isb, isc = has_quark(ids, 5), has_quark(ids, 4)
    assert _last_in_chain(isb, d1, d2, np.nonzero(isb)[0]).tolist() == [2]  # the B0, not the B*0
    assert _last_in_chain(isc, d1, d2, np.nonzero(isc)[0]).tolist() == [4]


def test_flavour_labels_constructed_event():
    jet_eta, jet_phi = np.array([0.0, 1.0, -1.0, 0.3]), np.array([0.0, 1.0, 2.0, 0.0])
    b_had = [(0.05, -0.03)]  # nearest jet 0 (jet 3 is 0.25 away but further)
    c_had = [(0.02, 0.0), (1.1, 1.05), (3.0, -2.0)]  # jet 0 (already b), jet 1, nowhere
    assert flavour_labels(jet_eta, jet_phi, b_had, c_had).tolist() == [5, 4, 0, 0]
    # phi wraps around: a hadron at phi = pi - 0.05 belongs to a jet at phi = -pi + 0.05
    assert flavour_labels([0.0], [-np.pi + 0.05], [(0.0, np.pi - 0.05)], []).tolist() == [5]
    assert flavour_labels([0.0], [0.0], [(0.0, 0.45)], [], dr_max=0.4).tolist() == [0]
    assert flavour_labels([], [], [(0.0, 0.0)], []).size == 0


# ---------------------------------------------------------------------------------------------- IP signs


@pytest.mark.parametrize("jet_phi,jet_eta", [(0.3, 0.5), (-2.8, -1.2), (3.0, 0.0)])
def test_ip_sign_positive_along_the_jet_negative_behind(jet_phi, jet_eta):
    L = 3.0  # mm flight of a b hadron along the jet axis
    theta = 2 * np.arctan(np.exp(-jet_eta))
    direction = np.array([np.sin(theta) * np.cos(jet_phi), np.sin(theta) * np.sin(jet_phi), np.cos(theta)])
    dphi = np.array([0.1, -0.1, 0.05, -0.2])
    deta = np.array([0.1, -0.1, -0.05, 0.2])
    phi, eta = jet_phi + dphi, jet_eta + deta
    pt = np.full(4, 5.0)
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    for sign in (1, -1):
        x, y, z = (sign * L * direction[:, None] * np.ones(4)).reshape(3, 4)
        d0, z0 = true_impact_parameters(x, y, z, px, py, pz)
        # |d0| = Lxy |sin(dphi)| in the straight-line approximation
        np.testing.assert_allclose(np.abs(d0), L * np.sin(theta) * np.abs(np.sin(dphi)), rtol=1e-9)
        sd0, sz0 = signed_impact_parameters(d0, z0, eta, phi, jet_eta, jet_phi)
        assert np.all(np.sign(sd0) == sign), (sign, sd0)
        assert np.all(np.sign(sz0) == sign), (sign, sz0)
    # a prompt track has zero impact parameters
    d0, z0 = true_impact_parameters(0.0, 0.0, 0.0, 1.0, 2.0, 3.0)
    assert d0 == 0 and z0 == 0


def test_track_grade():
    assert track_grade([1, 0, 0, 0], [3, 3, 2, 1]).tolist() == [0, 1, 1, 2]


# ---------------------------------------------------------------------------------------------- bad input


def _toy_jets(n=600, seed=0, m=8):
    """Synthetic jets: b tracks with large positive S_d0, c smaller, light symmetric around zero."""
    rng = np.random.default_rng(seed)
    y = rng.choice([0, 4, 5], n, p=[0.5, 0.2, 0.3])
    X = np.zeros((n, m, len(BTAG_FEATURES)), dtype=np.float32)
    ntr = rng.integers(1, m + 1, n)
    shift = np.select([y == 5, y == 4], [4.0, 1.5], 0.0)
    for i in range(n):
        k = ntr[i]
        sd0 = rng.normal(0, 1.5, k) + shift[i] * (rng.random(k) < 0.6)
        order = np.argsort(-np.abs(sd0))
        X[i, :k, 0] = sd0[order]
        X[i, :k, 1] = rng.normal(0, 1.5, k) + 0.5 * shift[i] * (rng.random(k) < 0.5)
        X[i, :k, 2] = rng.dirichlet(np.ones(k)) * 0.9
        X[i, :k, 3] = rng.uniform(0, 0.4, k)
        X[i, :k, 4] = rng.choice(3, k, p=[0.9, 0.07, 0.03])
    return X, y


def test_bad_input_one_clear_error_each():
    X, y = _toy_jets(20)
    with pytest.raises(InputError, match=r"shape \(n_jets, n_tracks, 5\)"):
        check_btag_inputs(X[:, :, :4], y)
    with pytest.raises(InputError, match=r"shape \(n_jets, n_tracks, 5\)"):
        check_btag_inputs(X[0], y)
    bad = X.copy()
    bad[3, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN or infinite values \\(first in jet 3\\)"):
        check_btag_inputs(bad, y)
    empty = X.copy()
    empty[5] = 0.0
    with pytest.raises(InputError, match="1 jet\\(s\\) without tracks.*index 5"):
        check_btag_inputs(empty, y)
    with pytest.raises(InputError, match=r"unknown flavour label\(s\) \[3\]"):
        check_btag_inputs(X, np.where(np.arange(20) == 2, 3, y))
    with pytest.raises(InputError, match="integers 0 \\(light\\), 4 \\(c\\), 5 \\(b\\)"):
        check_btag_inputs(X, np.array(["b"] * 20))
    with pytest.raises(InputError, match=r"y must have shape \(20,\)"):
        check_btag_inputs(X, y[:5])
    g = X.copy()
    g[0, 0, 4] = 7
    with pytest.raises(InputError, match="track grade"):
        check_btag_inputs(g, y)
    # the estimators raise the same errors, and need all three flavours to train
    with pytest.raises(InputError, match="unknown flavour label"):
        IPLikelihoodTagger().fit(X, np.full(20, 1))
    with pytest.raises(InputError, match="needs b, c and light jets"):
        RNNIPTagger(epochs=1).fit(X, np.where(y == 4, 0, y))
    with pytest.raises(ConfigError, match="unknown b-tagger"):
        make_btagger("dl1")
    with pytest.raises(InputError, match=r"shape \(n, 3\)"):
        b_discriminant(np.ones((4, 2)))


# ---------------------------------------------------------------------------------------------- taggers


def test_discriminant_definition():
    p = np.array([[0.2, 0.3, 0.5]])
    np.testing.assert_allclose(b_discriminant(p, 0.07), np.log(0.5 / (0.07 * 0.3 + 0.93 * 0.2)), rtol=1e-9)
    np.testing.assert_allclose(b_discriminant(p, 0.0), np.log(0.5 / 0.2), rtol=1e-9)


def test_ip3d_separates_and_roundtrips(tmp_path):
    from excess.nn.io import load_model, save_model
    from excess.tagging.jets.btag_evaluate import rejection_table

    X, y = _toy_jets(800, seed=1)
    Xt, yt = _toy_jets(600, seed=2)
    m = IPLikelihoodTagger().fit(X, y)
    p = m.predict_proba(Xt)
    assert p.shape == (600, 3) and np.allclose(p.sum(1), 1)
    tab = rejection_table(yt, m.discriminant(Xt))
    assert tab["light_rej_77"] > 5 and tab["light_rej_70"] >= tab["light_rej_77"] >= tab["light_rej_85"]
    assert tab["c_rej_77"] > 1.2
    np.testing.assert_allclose(load_model(save_model(m, tmp_path / "ip3d")).predict_proba(Xt), p)


@pytest.mark.parametrize("cls", [RNNIPTagger, DeepSetBTagger])
def test_networks_learn_are_padding_invariant_and_roundtrip(cls, tmp_path):
    from excess.nn.io import load_model, save_model
    from excess.stats.roc import roc_auc

    X, y = _toy_jets(600, seed=3)
    Xt, yt = _toy_jets(300, seed=4)
    m = cls(epochs=4, batch_size=64, random_state=0, device="cpu").fit(X, y)
    p = m.predict_proba(Xt)
    bl = yt != 4
    assert roc_auc((yt[bl] == 5).astype(int), m.discriminant(Xt)[bl]) > 0.75
    padded = np.concatenate([Xt, np.zeros((300, 5, 5), np.float32)], axis=1)
    np.testing.assert_allclose(m.predict_proba(padded), p, atol=1e-5)
    again = cls(epochs=4, batch_size=64, random_state=0, device="cpu").fit(X, y)
    np.testing.assert_allclose(again.predict_proba(Xt), p, atol=1e-6)  # seeded: reproducible
    np.testing.assert_allclose(load_model(save_model(m, tmp_path / "m")).predict_proba(Xt), p, atol=1e-6)


# ---------------------------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def tiny_sample(tmp_path_factory):
    from excess.data.btag import generate_btag

    out = tmp_path_factory.mktemp("btag") / "data"
    res = generate_btag(out, 160, seed=7, chunk_size=80)
    return out, res


def test_generate_resume_and_physics(tiny_sample):
    from excess.data.btag import generate_btag, load_btag

    out, res = tiny_sample
    assert res["n_jets_generated"] == 160 and res["n_chunks_generated"] == 2
    assert generate_btag(out, 160, seed=7, chunk_size=80)["n_chunks_skipped"] == 2  # resume
    with pytest.raises(ConfigError, match="other settings"):
        generate_btag(out, 160, seed=8, chunk_size=80)
    d = load_btag(out)
    assert d.X.shape == (160, 25, 5) and set(np.unique(d.y)) == {0, 4, 5}
    meta = json.loads(next(out.glob("*ttbar.npz.json")).read_text())
    assert not any(meta["decay_limits"].values())
    # lifetime: b jets carry far more significantly displaced (positive) tracks than light jets, and their
    # b hadrons fly millimetres
    mask = d.X[:, :, 2] > 0
    frac = {lab: (d.X[:, :, 0][mask & (d.y == lab)[:, None]] > 3).mean() for lab in (0, 5)}
    assert frac[5] > 2 * frac[0], frac
    assert np.median(d.jets["jet_hadron_lxy"][d.y == 5]) > 0.5
    assert np.all(d.jets["jet_hadron_pt"][d.y == 0] == 0)


def test_cli_train_and_evaluate(tiny_sample, tmp_path, capsys):
    from click.testing import CliRunner

    from excess.cli.main import cli, main

    data, _ = tiny_sample
    run = tmp_path / "run"
    r = CliRunner().invoke(cli, ["tag", "btag", "evaluate", str(data), "-o", str(run), "--seeds", "2",
                                 "--param", "rnnip.epochs=1", "--param", "deepsets.epochs=1"])
    assert r.exit_code == 0, r.output
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["taggers"]) == {"ip3d", "deepsets", "rnnip"}
    for t in m["taggers"].values():
        assert len(t["seeds"]) == 2 and "light_rej_85_mean" in t and len(t["pt_bins_77_mean"]) == 4
    for f in ("report.html", "predictions.h5", "plots/light_rejection.png", "plots/c_rejection.png",
              "plots/rejection_vs_pt.png", "plots/discriminant.png"):
        assert (run / f).is_file(), f
    r = CliRunner().invoke(cli, ["tag", "btag", "train", str(data), "-t", "ip3d", "-o", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    # through the entry point: one error line and exit code 1 (EXIT_ERROR); no run directory made for bad input
    assert main(["tag", "btag", "train", str(data), "-t", "ip3d", "-o", str(tmp_path / "m")]) == 1
    assert "--force" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((2, 3, 4)), y=np.zeros(2))
    assert main(["tag", "btag", "evaluate", str(bad), "-o", str(tmp_path / "r2")]) == 1
    assert "not a b-tagging chunk file" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()
