"""Calibrated tagger scores (excess.nn.calibration) and pT-binned training of the electron tagger."""

import numpy as np
import pytest

from excess.errors import ConfigError, InputError
from excess.nn.calibration import ScoreCalibrator, prior_shift, reliability
from excess.nn.classifiers import balanced_weights
from excess.nn.io import load_model, save_model
from excess.tagging import ElectronTagger
from excess.tagging.evaluate import efficiency_at_fake_rate

FAST = dict(hidden=(16, 16), epochs=3, batch_size=256, lr=3e-3, device="cpu")


def _gauss_toy(n, rng, frac=0.5):
    """x ~ N(+1, 1) for class 1 and N(-1, 1) for class 0: the true log-odds at equal priors is 2x."""
    y = (rng.random(n) < frac).astype(int)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    return x, y, 1.0 / (1.0 + np.exp(-2.0 * x))


@pytest.mark.parametrize("method, tol", [("sigmoid", 0.02), ("isotonic", 0.06)])
def test_calibrator_recovers_known_probability(method, tol):
    rng = np.random.default_rng(0)
    distort = lambda x: 1.0 / (1.0 + np.exp(-(6.0 * x + 1.5)))  # noqa: E731 over-confident and shifted
    xc, yc, _ = _gauss_toy(20000, rng)
    x, y, p_true = _gauss_toy(20000, rng)
    raw = distort(x)
    cal = ScoreCalibrator(method).fit(distort(xc), yc)
    p = cal.predict(raw)
    mid = (p_true > 0.02) & (p_true < 0.98)
    assert np.abs(raw - p_true)[mid].mean() > 0.1  # the raw score is far from the truth
    assert np.abs(p - p_true)[mid].mean() < tol
    assert reliability(y, p)["ece"] < 0.02 < reliability(y, raw)["ece"]
    # strictly increasing (isotonic: its steps' ties broken by the raw score): rank-based figures unchanged
    o = np.argsort(raw, kind="stable")
    dr, dp = np.diff(raw[o]), np.diff(p[o])
    ok = (raw[o][:-1] > 1e-6) & (raw[o][1:] < 1 - 1e-6)  # (float resolution within 1e-6 of 0 and 1)
    assert np.all(dp[(dr > 1e-9) & ok] > 0) and np.all(dp >= 0) and np.all(dp[dr == 0] == 0)


def test_prior_shift_gives_the_posterior_at_the_sample_fraction():
    rng = np.random.default_rng(1)
    xc, yc, _ = _gauss_toy(20000, rng, frac=0.2)  # imbalanced calibration rows, balanced weights
    x, y, p_bal = _gauss_toy(20000, rng, frac=0.2)
    cal = ScoreCalibrator("sigmoid").fit(1.0 / (1.0 + np.exp(-3 * xc)), yc)
    p = cal.predict(1.0 / (1.0 + np.exp(-3 * x)))
    assert np.abs(p - p_bal).mean() < 0.02  # equal priors although the rows are 20 % class 1
    p20 = prior_shift(p, 0.2)
    assert abs(p20.mean() - y.mean()) < 0.01 and reliability(y, p20)["ece"] < 0.02
    with pytest.raises(ConfigError, match="prior"):
        prior_shift(p, 1.0)


@pytest.fixture(scope="module")
def pair(toy):
    train, _ = toy
    raw = ElectronTagger(model="dnn", random_state=1, calibration=None, **FAST).fit(train)
    cal = ElectronTagger(model="dnn", random_state=1, **FAST).fit(train)
    return raw, cal


def test_tagger_calibration_keeps_ranks_and_lowers_the_calibration_error(pair, toy, tmp_path):
    raw, cal = pair
    _, test = toy
    assert cal.calibration == "auto" and set(cal.calibrators_) == set(cal.members_) and not raw.calibrators_
    assert {c.method for c in cal.calibrators_.values()} == {"sigmoid"}
    y, pt, cats = test["label"].to_numpy(), test["pt"].to_numpy(), test["category"].to_numpy()
    pr, pc = raw.predict_proba(test)[:, 1], cal.predict_proba(test)[:, 1]
    assert not np.allclose(pr, pc)
    # the same network (calibrated on its early-stopping rows): per-category efficiencies are identical
    er = efficiency_at_fake_rate(y, raw.decision_function(test), pt, cats)
    ec = efficiency_at_fake_rate(y, cal.decision_function(test), pt, cats)
    per_cat = [(a.efficiency, b.efficiency) for a, b in zip(er, ec) if a.category != "combined"]
    assert sum(np.isfinite(a) for a, _ in per_cat) >= 6
    np.testing.assert_allclose(*zip(*per_cat), equal_nan=True)
    w = balanced_weights(y)  # the probability refers to equal priors: check reliability class-balanced
    ece_raw, ece_cal = reliability(y, pr, sample_weight=w)["ece"], reliability(y, pc, sample_weight=w)["ece"]
    assert ece_cal < ece_raw and ece_cal < 0.02, (ece_raw, ece_cal)
    # the prior: set after fitting, it shifts the odds; saved and loaded with the calibrators
    f = float(y.mean())
    shifted = cal.set_params(prior=f).predict_proba(test)[:, 1]
    np.testing.assert_allclose(shifted, prior_shift(pc, f))
    assert abs(shifted.mean() - f) < 0.03
    save_model(cal, tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.prior == f and set(back.calibrators_) == set(cal.calibrators_)
    np.testing.assert_allclose(back.predict_proba(test), cal.predict_proba(test), rtol=1e-10, atol=1e-12)
    cal.set_params(prior=None)
    with pytest.raises(ConfigError, match="calibration must be one of"):
        ElectronTagger(calibration="platt").fit(test)


def test_pt_binned_training_routes_each_track_to_its_member(toy, tmp_path):
    train, test = toy
    tg = ElectronTagger(model="dnn", pt_bins=(0.5, 2.0, 5.0), pt_bins_merge=True, min_tracks=10, random_state=3,
                        **FAST).fit(train)
    # the toy has no trt_nocalo electron above 2 GeV (no calorimeter cluster only for soft electrons): merged
    assert {"trt_calo:pt0", "trt_calo:pt1", "notrt_calo:pt0", "notrt_calo:pt1", "trt_nocalo:pt0-1"} <= set(tg.members_)
    assert "trt_nocalo:pt0" not in tg.members_
    cover = np.sum([tg._rows(test, k) for k in tg.members_], axis=0)
    assert np.all(cover == 1)  # every track in exactly one member, also below 0.5 and above 5 GeV
    p = tg.predict_proba(test)[:, 1]
    cat, pt = test["category"].to_numpy(), test["pt"].to_numpy()
    for key, rows in [("trt_calo:pt0", (cat == "trt_calo") & (pt < 2.0)),
                      ("trt_calo:pt1", (cat == "trt_calo") & (pt >= 2.0))]:  # outer bins open (pt > 5 too)
        m = tg._matrix(test[rows], key)
        np.testing.assert_allclose(p[rows], tg.member_predict(key, m))
        other = key[:-1] + ("1" if key.endswith("0") else "0")
        assert not np.allclose(p[rows], tg.member_predict(other, m))
    save_model(tg, tmp_path / "b")
    np.testing.assert_allclose(load_model(tmp_path / "b").predict_proba(test)[:, 1], p, rtol=1e-12)
    with pytest.raises(InputError, match=r"category 'trt_nocalo', pT bin 1 \[2, 5\) GeV .* has 0 electron"):
        ElectronTagger(model="hgb", hgb_members=1, pt_bins=(0.5, 2.0, 5.0), min_tracks=10).fit(train)
    with pytest.raises(InputError, match=r"category 'trt_calo', pT bin 1 \[2, 2.001\) GeV .* use fewer or wider"):
        ElectronTagger(model="hgb", hgb_members=1, pt_bins=(0.5, 2.0, 2.001, 5.0), min_tracks=10).fit(train)
    with pytest.raises(ConfigError, match="pt_bins must be"):
        ElectronTagger(model="hgb", pt_bins=(2.0, 1.0)).fit(train)


def test_cli_pt_bins_and_calibration(toy, tmp_path, capsys):
    import json

    from excess.cli.main import main

    train, _ = toy
    path = tmp_path / "t.parquet"
    train.to_parquet(path)
    rc = main(["-q", "tag", "electrons", "train", "-i", str(path), "--model", "inclusive", "--pt-bins", "0.5,2,5",
               "--pt-bins-merge", "--calibration", "isotonic", "--epochs", "1", "--hidden", "8", "--device", "cpu",
               "-o", str(tmp_path / "run")])
    assert rc == 0, capsys.readouterr().err
    hp = json.loads((tmp_path / "run" / "models" / "inclusive" / "hyperparameters.json").read_text())
    assert hp["params"]["pt_bins"] == [0.5, 2.0, 5.0] and hp["params"]["calibration"] == "isotonic"
    assert set(json.loads(capsys.readouterr().out)["models"]["inclusive"]["n_train"]) == {"all:pt0", "all:pt1"}
    assert main(["-q", "tag", "electrons", "train", "-i", str(path), "--pt-bins", "1,x", "-o",
                 str(tmp_path / "r2")]) == 1
    assert "--pt-bins expects comma-separated edges" in capsys.readouterr().err


def test_hgb_raw_by_default_and_cross_fitted_on_request(toy):
    train, test = toy
    train = train.iloc[:2000]  # (keeps the three fits per category small)
    auto = ElectronTagger(model="hgb", hgb_members=1, random_state=4).fit(train)
    assert not auto.calibrators_  # "auto": HGB's class-balanced boosting is left raw
    cal = ElectronTagger(model="hgb", hgb_members=1, random_state=4, calibration="isotonic").fit(train)
    assert {c.method for c in cal.calibrators_.values()} == {"isotonic"}
    for g in auto.members_:  # the members are trained exactly as without calibration
        m = cal._matrix(test[cal._rows(test, g)], g)
        np.testing.assert_array_equal(cal._raw(g, m), auto._raw(g, m))
    y, pt, cats = test["label"].to_numpy(), test["pt"].to_numpy(), test["category"].to_numpy()
    ea = efficiency_at_fake_rate(y, auto.decision_function(test), pt, cats)
    ec = efficiency_at_fake_rate(y, cal.decision_function(test), pt, cats)
    np.testing.assert_allclose([e.efficiency for e in ea if e.category != "combined"],
                               [e.efficiency for e in ec if e.category != "combined"])
