import numpy as np
import pytest

from excess.errors import InputError
from excess.stats.roc import fpr_cutoff, max_sic, roc_auc, roc_curve, sic_at_fpr, sic_curve


@pytest.fixture
def toy():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(20_000), np.ones(2_000)].astype(int)
    s = rng.normal(size=y.size) + 2.0 * y
    return y, s


def test_roc_matches_sklearn(toy):
    from sklearn.metrics import roc_auc_score

    y, s = toy
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    s_tied = np.round(s, 1)
    assert roc_auc(y, s_tied) == pytest.approx(roc_auc_score(y, s_tied), abs=1e-12)
    fpr, tpr, thr = roc_curve(y, s)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0) and np.all(np.diff(thr) < 0)


def test_sic_formula_and_cutoff(toy):
    y, s = toy
    curve = sic_curve(y, s, max_rel_err=0.2)
    assert curve.fpr_min == pytest.approx(1 / (20_000 * 0.04))
    assert np.allclose(curve.sic, curve.tpr / np.sqrt(curve.fpr))
    assert curve.max_sic == pytest.approx(np.max(curve.sic[curve.fpr >= curve.fpr_min]))
    assert curve.max_sic == max_sic(y, s)
    # a looser cutoff can only raise the max
    assert max_sic(y, s, max_rel_err=0.5) >= max_sic(y, s, max_rel_err=0.1)
    tpr, fpr, sic, fmin = curve  # unpacks
    assert fmin == curve.fpr_min
    assert "N_bkg = 20000" in curve.cutoff_label


def test_sic_values_for_gaussian_shift():
    # for unit Gaussians separated by 2, the SIC at FPR = 1 - Phi(t) is Phi(2 - t) / sqrt(FPR)
    from scipy.stats import norm

    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(400_000), np.ones(400_000)].astype(int)
    s = rng.normal(size=y.size) + 2.0 * y
    t = norm.isf(0.01)
    assert sic_at_fpr(y, s, 0.01) == pytest.approx(norm.sf(t - 2) / 0.1, rel=0.02)
    assert sic_at_fpr(y, s, [0.01, 0.1]).shape == (2,)


def test_random_scores_give_sic_near_sqrt_fpr():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 50_000)
    s = rng.normal(size=y.size)
    assert roc_auc(y, s) == pytest.approx(0.5, abs=0.02)
    assert sic_at_fpr(y, s, 0.25) == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize(
    "y, s, match",
    [
        ([0, 1, 1], [0.1, np.nan, 0.3], "NaN"),
        ([0, 1], [0.1, 0.2, 0.3], "lengths"),
        ([0, 0, 0], [0.1, 0.2, 0.3], "both"),
        ([0, 2, 1], [0.1, 0.2, 0.3], "labels"),
    ],
)
def test_bad_inputs(y, s, match):
    with pytest.raises(InputError, match=match):
        max_sic(y, s)


def test_bad_fpr():
    with pytest.raises(InputError):
        sic_at_fpr([0, 1], [0.0, 1.0], 0.0)
    with pytest.raises(InputError):
        fpr_cutoff(0)
