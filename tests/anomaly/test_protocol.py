"""The shared protocol: registry, validation errors, cross-validated scores, classifier methods."""

import sys

import numpy as np
import pytest
from sklearn.base import clone

from excess.anomaly import METHODS, cross_val_scores, in_sr, make_method
from excess.errors import ConfigError, InputError, NotFittedError
from excess.stats.roc import roc_auc

from anomaly_toys import SR


def test_registry_names():
    assert METHODS == ("supervised", "idealized", "cwola", "anode", "cathode", "ranode", "autoencoder", "vae",
                       "antelope")
    for name in METHODS:
        est = make_method(name, fast=True, random_state=3)
        assert est.name == name
        assert clone(est).get_params() == est.get_params()


def test_unknown_method_and_param():
    with pytest.raises(ConfigError, match="known methods: supervised, idealized, cwola"):
        make_method("isolation_forest")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_method("cwola", n_trees=3)


def test_import_does_not_import_torch():
    import subprocess

    code = "import sys, excess.anomaly, excess.stats.roc; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "name, kw",
    [("supervised", "y"), ("idealized", "bkg"), ("cwola", None)],
)
@pytest.mark.parametrize("classifier", ["hgb", "mlp"])
def test_classifier_methods_find_strong_signal(toy_signal, toy_background, name, kw, classifier):
    X, m, y = toy_signal
    fit_kw = {"y": y} if kw == "y" else ({"X_background": toy_background[0], "m_background": toy_background[1]} if kw == "bkg" else {})
    est = make_method(name, fast=True, classifier=classifier, random_state=0)
    s = cross_val_scores(est, X, m, sr=SR, n_folds=3, random_state=0, **fit_kw)
    assert s.shape == (X.shape[0],) and np.all(np.isfinite(s))
    sr = in_sr(m, SR)
    assert roc_auc(y[sr], s[sr]) > 0.85


def test_cross_val_scores_reproducible_and_out_of_fold(toy_signal):
    X, m, y = toy_signal
    est = make_method("supervised", fast=True)
    a = cross_val_scores(est, X, m, sr=SR, n_folds=2, random_state=7, y=y)
    b = cross_val_scores(est, X, m, sr=SR, n_folds=2, random_state=7, y=y)
    np.testing.assert_array_equal(a, b)
    # in-sample scores of a model are more confident than its out-of-fold scores on the same events
    fitted = clone(est).set_params(random_state=0).fit(X, m, sr=SR, y=y)
    sr = in_sr(m, SR)
    assert roc_auc(y[sr], fitted.score_samples(X, m)[sr]) >= roc_auc(y[sr], a[sr]) - 1e-9


def test_cross_val_scores_with_executor(toy_signal):
    from excess.executor import SerialExecutor

    X, m, y = toy_signal
    est = make_method("cwola", fast=True)
    a = cross_val_scores(est, X, m, sr=SR, n_folds=2, random_state=1)
    b = cross_val_scores(est, X, m, sr=SR, n_folds=2, random_state=1, executor=SerialExecutor())
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- bad input: one clear error each
def _fit(X, m, name="cwola", **kw):
    return make_method(name, fast=True).fit(X, m, sr=SR, **kw)


def test_nan_rows_are_rejected(toy_signal):
    X, m, _ = toy_signal
    X = X.copy()
    X[[3, 10], 1] = np.nan
    X[5, 0] = np.inf
    with pytest.raises(InputError, match=r"3 rows with NaN/inf .*first rows \[3, 5, 10\].*columns \[0, 1\]"):
        _fit(X, m)
    m2 = m.copy()
    m2[0] = np.nan
    with pytest.raises(InputError, match="m has 1 NaN"):
        _fit(toy_signal[0], m2)


def test_constant_column_rejected(toy_signal):
    X, m, _ = toy_signal
    X = X.copy()
    X[:, 2] = 1.5
    with pytest.raises(InputError, match=r"constant columns \[2\]"):
        _fit(X, m)


def test_mismatched_lengths(toy_signal):
    X, m, y = toy_signal
    with pytest.raises(InputError, match="mismatched lengths"):
        _fit(X, m[:-1])
    with pytest.raises(InputError, match="mismatched lengths"):
        _fit(X, m, name="supervised", y=y[:-1])
    with pytest.raises(InputError, match="mismatched lengths"):
        cross_val_scores(make_method("cwola"), X[:-2], m, sr=SR)


def test_missing_required_inputs(toy_signal):
    X, m, _ = toy_signal
    with pytest.raises(ConfigError, match="needs truth labels"):
        _fit(X, m, name="supervised")
    with pytest.raises(ConfigError, match="needs a true background sample"):
        _fit(X, m, name="idealized")


def test_too_few_events(toy_signal):
    X, m, _ = toy_signal
    with pytest.raises(InputError, match="too few signal-region events"):
        _fit(X, m + 10_000)  # nothing in the SR
    keep = ~in_sr(m, SR) | (np.cumsum(in_sr(m, SR)) <= 22)  # 22 SR events: 17 per training split < 20
    with pytest.raises(InputError, match="too few SR events for 5 folds"):
        cross_val_scores(make_method("cwola", fast=True), X[keep], m[keep], sr=SR, n_folds=5)
    only_sr = in_sr(m, SR)
    with pytest.raises(InputError, match="too few sideband events"):
        _fit(X[only_sr], m[only_sr])


def test_bad_sr_and_folds(toy_signal):
    X, m, _ = toy_signal
    with pytest.raises(ConfigError, match="lo < hi"):
        make_method("cwola").fit(X, m, sr=(3700, 3300))
    with pytest.raises(ConfigError, match="n_folds"):
        cross_val_scores(make_method("cwola"), X, m, sr=SR, n_folds=1)
    with pytest.raises(ConfigError, match="unknown fit arguments"):
        cross_val_scores(make_method("cwola"), X, m, sr=SR, labels=1)


def test_score_before_fit_and_wrong_width(toy_signal):
    X, m, _ = toy_signal
    est = make_method("cwola", fast=True)
    with pytest.raises(NotFittedError):
        est.score_samples(X, m)
    est.fit(X, m, sr=SR)
    with pytest.raises(InputError, match="fitted with 4"):
        est.score_samples(X[:, :3], m)
    with pytest.raises(InputError, match="2-d"):
        est.score_samples(X[:, 0], m)


class _Fraction:
    """A protocol object that is no scikit-learn estimator and estimates a signal fraction (like R-ANODE)."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, m, *, sr):
        self.signal_fraction_ = 0.01 * (self.random_state % 7)
        self.signal_fraction_err_ = 0.001
        return self

    def score_samples(self, X, m):
        return np.asarray(X)[:, 0]


def test_out_of_fold_pieces():
    from excess.anomaly.base import FoldJob, fresh_estimator, run_fold, stratified_folds

    rng = np.random.default_rng(0)
    is_sr = rng.random(1000) < 0.3
    fold = stratified_folds(is_sr, 4, np.random.default_rng(1))
    for k in range(4):
        assert abs((fold[is_sr] == k).sum() - is_sr.sum() / 4) <= 1
        assert abs((fold[~is_sr] == k).sum() - (~is_sr).sum() / 4) <= 1
    np.testing.assert_array_equal(fold, stratified_folds(is_sr, 4, np.random.default_rng(1)))
    proto = _Fraction(random_state=1)
    copy = fresh_estimator(proto, seed=12)
    assert copy is not proto and copy.random_state == 12 and proto.random_state == 1
    est = fresh_estimator(make_method("cwola", fast=True), seed=5)
    assert est.random_state == 5 and not hasattr(est, "is_fitted_")
    X = rng.normal(size=(50, 2))
    m = rng.uniform(3000, 4000, 50)
    out = run_fold(FoldJob(proto, 12, X[:40], m[:40], X[40:], m[40:], SR))
    np.testing.assert_array_equal(out.scores, X[40:, 0])
    assert out.signal_fraction == pytest.approx(0.05) and out.signal_fraction_err == 0.001 and out.runtime_s >= 0
