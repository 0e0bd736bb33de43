"""The decorrelation transforms share one input check (``_check_xm``): the same clear error, naming ``X`` or
``m``, the first bad row, the feature and the value, from every transform, at fit and at transform time;
and every transform's ``fit`` takes ``sr`` (which :class:`Decorrelated` always passes). Tiny arrays."""

import numpy as np
import pandas as pd
import pytest

from excess.errors import InputError, NonFiniteError
from excess.search.decorrelation import (ConditionalCopulaTransform, ConditionalFlowTransform,
                                         ConditionalQuantileTransform, Decorrelated, MassRatioTransform)
from excess.search.synthetic import GaussianSRvsSB
from excess.stats.windows import LHCO_SR

FAST_FLOW = {"transforms": 1, "hidden": [4], "epochs": 1, "batch_size": 256, "patience": 1, "device": "cpu",
             "random_state": 0}
TRANSFORMS = {
    "quantile": lambda: ConditionalQuantileTransform(n_mass_bins=2, n_levels=5),
    "flow": lambda: ConditionalFlowTransform(n_mass_bins=2, **FAST_FLOW),
    "copula": lambda: ConditionalCopulaTransform(n_mass_bins=2, degree=1, corr_degree=1, n_grid=4),
    "ratio": lambda: MassRatioTransform(columns=(0,)),
}


@pytest.fixture(scope="module")
def events():
    rng = np.random.default_rng(0)
    return rng.normal(size=(120, 3)) + 5.0, rng.uniform(2800.0, 4200.0, 120)


@pytest.fixture(scope="module")
def fitted(events):
    X, m = events
    return {kind: make().fit(X, m) for kind, make in TRANSFORMS.items()}


X_NAN = r"X has 1 NaN or infinite feature values \(first: row 7, feature column 2, value nan\)"
M_INF = r"m \(mjj\) has 1 NaN or infinite values \(first: row 5, value inf\)"


@pytest.mark.parametrize("kind", list(TRANSFORMS))
def test_every_transform_raises_the_same_clear_error(kind, events, fitted):
    X, m = events
    X_bad, m_bad = X.copy(), m.copy()
    X_bad[7, 2] = np.nan
    m_bad[5] = np.inf
    for step, call in (("fit", lambda a, b: TRANSFORMS[kind]().fit(a, b)),
                       ("transform", lambda a, b: fitted[kind].transform(a, b))):
        with pytest.raises(NonFiniteError, match=rf"^{kind} decorrelation \({step}\): {X_NAN}$") as e:
            call(X_bad, m)
        assert e.value.counts == {"column 2": 1} and e.value.n_rows == 1
        with pytest.raises(NonFiniteError, match=rf"^{kind} decorrelation \({step}\): {M_INF}$") as e:
            call(X, m_bad)
        assert e.value.counts == {"m": 1}
        # shapes: mismatched lengths, X not 2-d, m not 1-d
        with pytest.raises(InputError, match=r"X must be \(n, (d|3)\) and m \(n,\) with the same n, got X of shape "
                                             r"\(120, 3\) and m of shape \(119,\)"):
            call(X, m[:-1])
        with pytest.raises(InputError, match=r"X must be \(n, (d|3)\) and m \(n,\), got X of shape \(120,\)"):
            call(X[:, 0], m)
        with pytest.raises(InputError, match=r"m \(mjj\) must be 1-d \(n,\), got shape \(120, 1\)"):
            call(X, m[:, None])
    with pytest.raises(InputError, match=rf"^{kind} decorrelation \(transform\): X must be \(n, 3\) and m \(n,\) "
                                         r"\(the transform was fitted with 3 features\), got X of shape \(120, 2\)$"):
        fitted[kind].transform(X[:, :2], m)
    # a DataFrame's columns name the feature
    df = pd.DataFrame(X_bad, columns=["mj1", "delta_mj", "tau21_j1"])
    with pytest.raises(NonFiniteError, match=r"feature column 2 \(tau21_j1\), value nan\)") as e:
        TRANSFORMS[kind]().fit(df, m)
    assert e.value.counts == {"tau21_j1": 1}


@pytest.mark.parametrize("kind", ["flow", "copula"])
def test_inverse_transform_names_its_input(kind, events, fitted):
    X, m = events
    U = fitted[kind].transform(X[:10], m[:10])
    U[3, 1] = -np.inf
    with pytest.raises(NonFiniteError, match=rf"^{kind} decorrelation \(inverse_transform\): U has 1 NaN or infinite "
                                             r"feature values \(first: row 3, feature column 1, value -inf\)$"):
        fitted[kind].inverse_transform(U, m[:10])


def test_log_and_ratio_need_positive_mass(events):
    X, m = events
    m0 = m.copy()
    m0[4] = 0.0
    for kind in ("copula", "ratio"):
        with pytest.raises(InputError, match=rf"^{kind} decorrelation \(fit\): m \(mjj\) must be > 0, row 4 has 0.0$"):
            TRANSFORMS[kind]().fit(X, m0)


@pytest.mark.parametrize("kind", list(TRANSFORMS))
def test_every_fit_takes_sr_and_the_wrapper_names_features(kind, events, fitted):
    X, m = events
    # sr is accepted by every transform; those that do not use it give the same transform
    again = TRANSFORMS[kind]().fit(X, m, sr=LHCO_SR)
    assert np.allclose(again.transform(X[:20], m[:20]), fitted[kind].transform(X[:20], m[:20]))
    params = {"quantile": {"n_mass_bins": 2, "n_levels": 5}, "flow": {"n_mass_bins": 2, **FAST_FLOW},
              "copula": {"n_mass_bins": 2, "degree": 1, "corr_degree": 1, "n_grid": 4}, "ratio": {}}[kind]
    d = Decorrelated(GaussianSRvsSB(), transform=kind, features=("mj1", "delta_mj", "tau21_j1"), transform_params=params,
                     random_state=0).fit(X, m, sr=LHCO_SR)
    assert np.isfinite(d.score_samples(X[:5], m[:5])).all()
    X_bad = X.copy()
    X_bad[7, 2] = np.inf
    with pytest.raises(NonFiniteError, match=r"^decorrelation \(score_samples\): X has 1 NaN or infinite feature values "
                                             r"\(first: row 7, feature column 2 \(tau21_j1\), value inf\)$"):
        d.score_samples(X_bad, m)
    with pytest.raises(NonFiniteError, match=r"^decorrelation \(fit\): .*feature column 2 \(tau21_j1\), value inf"):
        Decorrelated(GaussianSRvsSB(), transform=kind, features=("mj1", "delta_mj", "tau21_j1"),
                     transform_params=params).fit(X_bad, m, sr=LHCO_SR)
