"""Jet tagging: image and feature preprocessing invariances, the taggers, evaluation and the CLI end to end."""

import json

import numpy as np
import pytest

from excess.data.qg import write_qg_npz
from excess.errors import ConfigError, InputError, NotFittedError
from excess.tagging.jets import preprocessing as pp
from excess.tagging.jets.evaluate import rejection_at


def toy_jets(n, rng, m=40):
    """Quark-like (label 1: fewer, narrower particles) and gluon-like jets in EnergyFlow format."""
    X = np.zeros((n, m, 4))
    y = (np.arange(n) % 2).astype(float)
    for i in range(n):
        k = min(m, 3 + rng.poisson(10 if y[i] else 20))
        w = 0.04 if y[i] else 0.08
        pt = np.sort(rng.exponential(1.0, k))[::-1]
        X[i, :k, 0] = 525 * pt / pt.sum()
        X[i, :k, 1] = rng.uniform(-1.5, 1.5) + rng.normal(0, w, k)
        X[i, :k, 2] = rng.uniform(-np.pi, np.pi) + rng.normal(0, w, k)
        X[i, :k, 3] = rng.choice([22, 211, -211, 321, 130, 2112, -11], k)
    X[:, :, 2] = (X[:, :, 2] + np.pi) % (2 * np.pi) - np.pi  # wrapped azimuth, as in real files
    return X, y


def _transform(X, angle, reflect, shift=(0.0, 0.0)):
    """Rotate (and reflect) every jet's particles about its pT-weighted centroid, then translate it."""
    z, dy, dphi, mask = pp.centre(X)
    yc = (z * X[..., 1]).sum(1, keepdims=True)
    lead = X[np.arange(len(X)), np.argmax(X[..., 0], 1), 2][:, None]
    pc = (z * (lead + pp.delta_phi(X[..., 2], lead))).sum(1, keepdims=True)
    u = -dy if reflect else dy
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * u - s * dphi, s * u + c * dphi
    Y = X.copy()
    Y[..., 1] = np.where(mask, yc + u + shift[0], 0)
    Y[..., 2] = np.where(mask, pp.delta_phi(pc + v + shift[1], 0), 0)
    return Y


@pytest.mark.parametrize("angle, reflect", [(0.7, False), (2.5, True), (np.pi, False), (-1.2, True)])
def test_images_invariant_to_rotation_reflection_translation(angle, reflect):
    X, _ = toy_jets(20, np.random.default_rng(0))
    img = pp.jet_images(X)
    img2 = pp.jet_images(_transform(X, angle, reflect, shift=(0.3, 3.0)))  # shift across the phi wrap
    # identical up to particles sitting on a pixel edge after float rounding: compare per-jet L1 distances
    diff = np.abs(img - img2).sum(axis=(1, 2, 3)) / np.abs(img).sum(axis=(1, 2, 3))
    assert np.median(diff) < 1e-6 and np.mean(diff < 1e-6) >= 0.9
    # without rotation the images differ: the test above can fail
    raw = pp.jet_images(X, rotate=False, flip=False)
    raw2 = pp.jet_images(_transform(X, angle, reflect), rotate=False, flip=False)
    assert np.abs(raw - raw2).sum() > 1.0


def test_image_channels_and_shape():
    X, _ = toy_jets(10, np.random.default_rng(1))
    img = pp.jet_images(X, width=10.0)  # wide window: every particle is inside
    assert img.shape == (10, 3, 33, 33) and img.dtype == np.float32
    np.testing.assert_allclose(img[:, :2].sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)  # pT fractions
    charged = pp.charge_of(X[..., 3]) != 0
    np.testing.assert_array_equal(img[:, 2].sum(axis=(1, 2)), (charged & (X[..., 0] > 0)).sum(1))
    np.testing.assert_allclose(img[:, 0].sum(axis=(1, 2)), (X[..., 0] * charged).sum(1) / X[..., 0].sum(1), rtol=1e-5)


def test_particle_features_and_observables():
    X, _ = toy_jets(12, np.random.default_rng(2))
    f, mask = pp.particle_features(X)
    assert f.shape == (12, 40, 3 + 1 + len(pp.PARTICLE_TYPES))
    np.testing.assert_allclose(f[..., 0].sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose((f[..., 0] * f[..., 1]).sum(1), 0.0, atol=1e-6)  # centred
    assert np.all(f[~mask] == 0) and np.all(f[mask][:, 4:].sum(1) == 1)  # one type per real particle
    assert pp.charge_of(np.array([211, -211, 11, -13, 22])).tolist() == [1, -1, -1, 1, 0]
    obs = pp.jet_observables(X)
    assert obs.shape == (12, len(pp.OBSERVABLES)) and np.all(np.isfinite(obs))
    np.testing.assert_array_equal(obs[:, 1], mask.sum(1))
    assert np.all((obs[:, 4] > 0) & (obs[:, 4] <= 1)) and np.all(obs[:, 0] > 0)
    # quark-like toy jets are narrower than gluon-like ones
    y = np.arange(12) % 2
    assert obs[y == 1, 3].mean() < obs[y == 0, 3].mean()


def test_rejection_at():
    y = np.r_[np.zeros(4), np.ones(4)]
    s = np.r_[0.1, 0.2, 0.3, 0.9, 0.5, 0.6, 0.7, 0.8]
    assert rejection_at(y, s, 0.5) == 4.0  # top 2 signal scores are above all but one background
    with pytest.raises(ConfigError):
        rejection_at(y, s, 0.0)


@pytest.mark.parametrize("name", ["pfn", "efn", "cnn", "hgb"])
def test_taggers_learn_toy(name):
    from excess.tagging.jets.models import make_tagger
    from excess.stats.roc import roc_auc

    rng = np.random.default_rng(3)
    X, y = toy_jets(240, rng)
    Xt, yt = toy_jets(120, rng)
    small = {"pfn": dict(phi_sizes=(16, 16), f_sizes=(16,), epochs=8, batch_size=32, device="cpu",
                         lr_schedule="cosine"),
             "efn": dict(phi_sizes=(16, 16), f_sizes=(16,), epochs=8, batch_size=32, device="cpu"),
             "cnn": dict(channels=(4, 8, 8), dense=(16,), epochs=4, batch_size=32, device="cpu"),
             "hgb": dict(n_members=1, max_iter=50)}[name]
    model = make_tagger(name, random_state=0, **small)
    with pytest.raises(NotFittedError):
        model.decision_function(Xt)
    model.fit(X, y)
    assert model.predict_proba(Xt).shape == (120, 2)
    assert roc_auc(yt, model.decision_function(Xt)) > 0.75
    if name != "hgb":  # seeded: the same seed gives the same scores
        again = make_tagger(name, random_state=0, **small).fit(X, y)
        np.testing.assert_allclose(again.decision_function(Xt), model.decision_function(Xt), rtol=1e-5, atol=1e-6)


def test_tagger_bad_input_and_save_load(tmp_path):
    from excess.nn.io import load_model, save_model
    from excess.tagging.jets.models import make_tagger

    X, y = toy_jets(60, np.random.default_rng(4))
    m = make_tagger("pfn", phi_sizes=(8,), f_sizes=(8,), epochs=1, random_state=1, device="cpu")
    with pytest.raises(InputError, match="unknown flavour"):
        m.fit(X, np.where(y == 1, 5, 0))
    with pytest.raises(InputError, match="shape"):
        m.fit(X[..., :3], y)
    with pytest.raises(InputError, match="both|quark"):
        m.fit(X, np.zeros_like(y))
    with pytest.raises(ConfigError, match="unknown tagger"):
        make_tagger("bdt")
    with pytest.raises(ConfigError, match="lr_schedule"):
        make_tagger("pfn", lr_schedule="step", epochs=1, device="cpu").fit(X, y)
    nopid = make_tagger("pfn_nopid", use_pid=True)
    assert nopid.use_pid is False and nopid._build().n_features == 4  # z, dy, dphi, log z
    m.fit(X, y)
    save_model(m, tmp_path / "m")
    back = load_model(tmp_path / "m", device="cpu")
    np.testing.assert_allclose(back.decision_function(X), m.decision_function(X), rtol=1e-6)


def test_cli_end_to_end(tmp_path):
    from click.testing import CliRunner

    from excess.cli.main import cli

    rng = np.random.default_rng(5)
    X, y = toy_jets(200, rng)
    write_qg_npz(tmp_path / "data" / "toy.npz", X, y)
    r = CliRunner().invoke(cli, [
        "tag", "jets", "evaluate", str(tmp_path / "data"), "-o", str(tmp_path / "run"), "-t", "hgb,efn", "--seeds", "2",
        "--n-test", "80", "--param", "hgb.n_members=1", "--param", "hgb.max_iter=30", "--param", "efn.epochs=2", "--param", "efn.batch_size=16",
        "--param", "efn.phi_sizes=[8,8]", "--param", "efn.f_sizes=[8]", "--param", "efn.device=\"cpu\""])
    assert r.exit_code == 0, r.output
    run = tmp_path / "run"
    m = json.loads((run / "metrics.json").read_text())
    assert set(m["taggers"]) == {"hgb", "efn"} and m["n_test"] == 80 and m["n_train"] == 120
    assert len(m["taggers"]["efn"]["auc"]) == 2 and m["taggers"]["hgb"]["auc_mean"] > 0.7
    for f in ("report.html", "plots/roc.png", "predictions.h5", "config.json", "scores/efn_seed1.npz"):
        assert (run / f).is_file(), f
    assert "gluon rejection" in (run / "report.html").read_text()
    # rerun resumes from the saved scores; other settings in the same directory are refused
    r2 = CliRunner().invoke(cli, ["tag", "jets", "evaluate", str(tmp_path / "data"), "-o", str(run), "-t", "hgb", "--seeds",
                                  "1", "--n-test", "80"])
    assert r2.exit_code != 0 and "other settings" in str(r2.exception)
    # train + save a model through the CLI
    r3 = CliRunner().invoke(cli, ["tag", "jets", "train", str(tmp_path / "data" / "toy.npz"), "-t", "efn", "-o",
                                  str(tmp_path / "model"), "--param", "epochs=1", "--device", "cpu"])
    assert r3.exit_code == 0, r3.output
    assert (tmp_path / "model" / "state_dict.pt").is_file()


def test_pfn_log_z_input():
    """``log_z`` adds one finite, padding-blind input per particle; padding and order still change nothing."""
    from excess.tagging.jets.models import make_tagger

    X, y = toy_jets(40, np.random.default_rng(5))
    m = make_tagger("pfn", log_z=True, phi_sizes=(8,), f_sizes=(8,), epochs=1, batch_size=16, random_state=2,
                    device="cpu")
    f, mask = m._inputs(X)
    plain, _ = make_tagger("pfn", log_z=False)._inputs(X)
    assert f.shape[-1] == plain.shape[-1] + 1 == m._build().n_features
    assert np.isfinite(f).all() and (f[~mask] == 0).all()
    z = plain[..., 0][mask]
    np.testing.assert_allclose(f[..., -1][mask], (np.log(z) + 4) / 2, rtol=1e-5)
    m.fit(X, y)
    padded = np.concatenate([X, np.zeros((len(X), 7, 4))], axis=1)
    perm = X[:, np.random.default_rng(6).permutation(X.shape[1])]
    np.testing.assert_allclose(m.decision_function(padded), m.decision_function(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.decision_function(perm), m.decision_function(X), rtol=1e-5, atol=1e-6)


def test_pfn_saved_without_log_z_still_loads(tmp_path):
    """A PFN file written before ``log_z`` existed (no key, one input fewer) loads with ``log_z=False``."""
    import json

    from excess.nn.io import load_model, save_model
    from excess.tagging.jets.models import make_tagger

    X, y = toy_jets(30, np.random.default_rng(7))
    old = make_tagger("pfn", log_z=False, phi_sizes=(8,), f_sizes=(8,), epochs=1, random_state=3, device="cpu")
    old.fit(X, y)
    save_model(old, tmp_path / "m")
    cfg_files = [p for p in (tmp_path / "m").rglob("*.json") if "log_z" in p.read_text()]
    for p in cfg_files:  # remove the key, as in files of earlier versions
        cfg = json.loads(p.read_text())
        cfg["params"].pop("log_z", None)
        p.write_text(json.dumps(cfg))
    back = load_model(tmp_path / "m", device="cpu")
    assert back.log_z is False
    np.testing.assert_allclose(back.decision_function(X), old.decision_function(X), rtol=1e-6)
