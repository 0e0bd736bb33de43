"""Tiny synthetic windows for the anomaly tests: Gaussian background uniform in m, a localized signal."""

import numpy as np

SR = (3300.0, 3700.0)


def make_toy(n_bkg=4000, n_sig=0, d=4, seed=0, shift=2.5, m_range=(2800.0, 4200.0)):
    """Background: N(0, 1) features with a mild m dependence of feature 0; signal: narrow blob."""
    rng = np.random.default_rng(seed)
    m_b = rng.uniform(*m_range, n_bkg)
    X_b = rng.normal(size=(n_bkg, d))
    X_b[:, 0] += 0.3 * (m_b - 3500.0) / 700.0  # smooth correlation with m (flows must interpolate it)
    m_s = rng.normal(3500.0, 60.0, n_sig)
    X_s = rng.normal(size=(n_sig, d)) * 0.3
    X_s[:, : min(2, d)] += shift
    X = np.concatenate([X_b, X_s])
    m = np.concatenate([m_b, m_s])
    y = np.r_[np.zeros(n_bkg, np.int8), np.ones(n_sig, np.int8)]
    perm = rng.permutation(y.size)
    return X[perm], m[perm], y[perm]


