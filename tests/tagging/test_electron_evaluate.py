"""Efficiency at fixed fake rate, Clopper-Pearson intervals, ROC summary, SHAP and the run directory."""

import json

import numpy as np
import pytest

from excess.errors import InputError
from excess.tagging import ElectronTagger
from excess.tagging.evaluate import clopper_pearson, efficiency_at_fake_rate, evaluate_taggers, roc_summary


def test_clopper_pearson_known_values():
    lo, hi = clopper_pearson(np.array([0, 5, 10]), np.array([10, 10, 10]), cl=0.95)
    np.testing.assert_allclose(lo, [0.0, 0.187086, 0.691503], atol=1e-5)
    np.testing.assert_allclose(hi, [0.308497, 0.812914, 1.0], atol=1e-5)
    with pytest.raises(InputError):
        clopper_pearson(3, 2)


def test_efficiency_at_fake_rate_on_a_known_toy():
    rng = np.random.default_rng(0)
    n = 40_000
    y = rng.random(n) < 0.5
    pt = rng.uniform(0.5, 5, n)
    shift = np.where(pt < 2, 1.0, 3.0)  # separation grows with pT
    s = rng.normal(size=n) + y * shift
    effs = efficiency_at_fake_rate(y, s, pt, fake_rate=0.05)
    assert [e.category for e in effs] == ["combined"] * 4
    for e in effs:
        assert e.fake_rate == pytest.approx(0.05, abs=0.01)
        z = 1.6449 - (1.0 if e.pt_hi <= 2 else 3.0)  # Gaussian expectation
        from scipy.stats import norm
        assert e.efficiency == pytest.approx(norm.sf(z), abs=0.03)
        assert e.eff_lo < e.efficiency < e.eff_hi
    cats = np.where(rng.random(n) < 0.5, "trt_calo", "notrt_calo")
    by = efficiency_at_fake_rate(y, s, pt, cats)
    assert {e.category for e in by} == {"trt_calo", "notrt_calo", "combined"}


def test_roc_summary_counts(toy):
    _, test = toy
    r = roc_summary(test["label"], test["f_ht"].fillna(0), test["category"])
    assert r["combined"]["n_electrons"] == int(test["label"].sum())
    assert r["notrt_calo"]["auc"] == pytest.approx(0.5)  # no TRT information in that category


def test_evaluate_run_directory_with_shap(toy, tmp_path):
    train, test = toy
    hgb = ElectronTagger(model="hgb", hgb_members=1, random_state=0).fit(train)
    dnn = ElectronTagger(model="inclusive", hidden=(16,), epochs=2, random_state=0, device="cpu").fit(train)
    m = evaluate_taggers({"hgb": hgb, "inclusive": dnn}, test, tmp_path / "run", n_shap=8, random_state=1)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["models"]["hgb"]["roc"]["combined"]["auc"] > 0.9
    assert abs(sum(saved["category_fractions_electrons"].values()) - 1) < 1e-9
    shap_trt = saved["models"]["hgb"]["shap"]["trt_calo"]  # TreeSHAP
    assert len(shap_trt["features"]) == len(shap_trt["mean_abs_shap"]) and max(shap_trt["mean_abs_shap"]) > 0
    perm = saved["models"]["inclusive"]["shap"]["all"]  # KernelSHAP of the network
    assert perm["units"] == "probability" and len(perm["mean_abs_shap"]) == len(dnn.features_["all"])
    assert max(perm["mean_abs_shap"]) > 0
    assert (tmp_path / "run" / "plots" / "compare_models.png").exists()
    assert (tmp_path / "run" / "plots" / "shap_hgb_trt_calo.png").stat().st_size > 1000
    assert (tmp_path / "run" / "plots" / "efficiency_hgb.png").exists()
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Clopper-Pearson" in html and "shap_hgb_trt_calo.png" in html
    assert m["pt_column"] == "true_pt"
