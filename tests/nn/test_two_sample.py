from __future__ import annotations

import math

import numpy as np
import pytest

from excess.errors import ConfigError, InputError
from excess.nn.two_sample import jsd_from_bce, two_sample_test

SMALL = dict(hidden=(16,), epochs=15, batch_size=64, lr=3e-3, patience=5, device="cpu")


def test_separates_different_gaussians_and_not_equal_ones():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 3))
    b = rng.normal(size=(500, 3)) + np.array([2.0, 0.0, 0.0])
    r = two_sample_test(a, b, random_state=1, **SMALL)
    assert r.auc > 0.9 and r.jsd > 0.4
    assert (r.n_train, r.n_calibration, r.n_test) == (600, 200, 200)
    assert r.jsd == pytest.approx(jsd_from_bce(r.bce)) == pytest.approx((math.log(2) - r.bce) / math.log(2))
    # equal densities: AUC 0.5 within ~3 sigma (0.029 for 400 + 400 test rows); the larger sample is subsampled
    same = two_sample_test(rng.normal(size=(2000, 3)), rng.normal(size=(2500, 3)), random_state=1, **SMALL)
    assert abs(same.auc - 0.5) < 0.09 and same.jsd < 0.05 and same.n_test == 800
    assert 1 <= same.epochs_run <= 15
    # a seed gives the same numbers; another estimator plugs in
    assert two_sample_test(a, b, random_state=1, **SMALL) == r
    assert two_sample_test(a, b, classifier="hgb", random_state=1, n_members=1, max_iter=30).auc > 0.9


def test_bad_input():
    a = np.zeros((10, 2))
    with pytest.raises(InputError, match=">= 20 rows"):
        two_sample_test(a, a)
    with pytest.raises(InputError, match="columns"):
        two_sample_test(np.zeros((30, 2)), np.zeros((30, 3)))
    with pytest.raises(InputError, match="NaN"):
        two_sample_test(np.full((30, 2), np.nan), np.zeros((30, 2)))
    with pytest.raises(ConfigError, match="fractions"):
        two_sample_test(np.zeros((30, 2)), np.zeros((30, 2)), fractions=(0.9, 0.2))


def test_mlp_classifier_stops_on_a_given_validation_set():
    """``MLPClassifier.fit(..., validation=(X, y))``: the early-stopping loss is the loss on exactly those rows."""
    from excess.nn.classifiers import MLPClassifier

    rng = np.random.default_rng(2)
    X, Xv = rng.normal(size=(300, 2)), rng.normal(size=(101, 2))
    y, yv = (X[:, 0] > 0).astype(int), (Xv[:, 0] + 0.5 > 0).astype(int)  # unequal classes in the validation rows
    c = MLPClassifier(hidden=(8,), epochs=4, n_best=1, random_state=0, device="cpu").fit(X, y, validation=(Xv, yv))
    p = c.predict_proba(Xv)[:, 1]
    w = np.where(yv == 1, 0.5 * yv.size / yv.sum(), 0.5 * yv.size / (yv.size - yv.sum()))  # class-balanced
    bce = np.mean(-w * (yv * np.log(p) + (1 - yv) * np.log(1 - p)))
    h = c.history_
    assert min(h["val_loss"]) == pytest.approx(bce, rel=1e-9) and h["best_epochs"] == [int(np.argmin(h["val_loss"]))]
