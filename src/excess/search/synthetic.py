"""Synthetic event tables and cheap reference scorers, for tests, benchmarks and demos of the search.

:func:`toy_events` draws a dijet-like sample: background mjj from the 3-parameter dijet
function, jet masses and tau21 *independent of mjj* by default (so a correct procedure cannot
sculpt), plus an optional W' -> X Y -> (qq)(qq)-like signal with a Gaussian mjj peak and jet masses
at mX (heavier jet) and mY (lighter jet). ``mass_correlation=k`` makes the background jet masses
grow like ``(mjj / 3500 GeV)^k`` (QCD jet masses scale with the jet pT, k ~ 1): a SR-vs-SB
classifier then learns mjj and sculpts the selected spectrum unless the features are decorrelated
(:mod:`excess.search.decorrelation`); the tests of that use it. ``joint_drift=r`` keeps every
feature's marginal distribution as it is but lets the *correlations* drift with mjj (a Gaussian copula
with correlation ``rho(m) = r tanh((m - 3500 GeV) / 700 GeV)`` between the lighter jet's mass and its
tau21, and between the mass difference and the heavier jet's tau21): a per-feature (marginal)
decorrelation cannot remove that, a classifier that sees correlations (``GaussianSRvsSB(covariance="full")``)
learns it, and its cut sculpts mjj unless the decorrelation is joint (``decorrelation="copula"`` or ``"flow"``).

The two scorers follow the anomaly protocol (``fit(X, m, *, sr, ...)``, ``score_samples``);
they are test doubles for the statistics, not analysis methods:

* :class:`FeatureScorer`: a fixed function of the features (no training);
* :class:`GaussianSRvsSB`: a CWoLa-like, learned score: the log-ratio of Gaussians (diagonal, or
  ``covariance="full"``) fitted to the SR and to the SB training events (milliseconds to fit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._util import check_random_state
from ..stats.dijet import sample_dijet

__all__ = ["toy_events", "FeatureScorer", "GaussianSRvsSB"]


def toy_events(
    n_background: int,
    n_signal: int = 0,
    *,
    mjj_range: tuple[float, float] = (2600.0, 7000.0),
    background_params: tuple = (1.0, 10.0, 5.0),
    signal_masses: tuple[float, float, float] = (3500.0, 500.0, 100.0),
    signal_mjj_width: float = 120.0,
    mass_correlation: float = 0.0,
    joint_drift: float = 0.0,
    random_state=None,
) -> pd.DataFrame:
    """A synthetic event table with the columns of :mod:`excess.data.schema` used by the search.

    ``mass_correlation``: exponent ``k`` of the background jet masses' scaling ``(mjj / 3500)^k``.
    ``joint_drift``: ``r`` in ``rho(m) = r tanh((m - 3500) / 700)``, the background's mjj-dependent
    correlation of (lighter jet mass, tau21_j1) and of (mass difference, tau21_j2), |r| < 1; the
    marginals stay those of ``joint_drift=0`` (which draws the same events as before the option existed).
    """
    rng = check_random_state(random_state)
    nb, ns = int(n_background), int(n_signal)
    r = float(joint_drift)
    if not -1.0 < r < 1.0:
        from ..errors import ConfigError

        raise ConfigError(f"joint_drift must be in (-1, 1), got {joint_drift}")
    mjj_b = sample_dijet(nb, background_params, mjj_range, random_state=rng)
    if r:
        from scipy import stats as sps

        rho = r * np.tanh((mjj_b - 3500.0) / 700.0)
        g = rng.standard_normal((4, nb))
        g[2] = rho * g[0] + np.sqrt(1 - rho**2) * g[2]  # tau21_j1 with the lighter mass
        g[3] = rho * g[1] + np.sqrt(1 - rho**2) * g[3]  # tau21_j2 with the mass difference
        light_b = np.exp(np.log(80.0) + 0.6 * g[0])
        heavy_b = light_b + np.exp(np.log(60.0) + 0.8 * g[1])
        t1_b, t2_b = sps.beta.ppf(sps.norm.cdf(g[2]), 5, 3), sps.beta.ppf(sps.norm.cdf(g[3]), 5, 3)
    else:
        light_b = rng.lognormal(np.log(80.0), 0.6, nb)
        heavy_b = light_b + rng.lognormal(np.log(60.0), 0.8, nb)
    if mass_correlation:
        scale = (mjj_b / 3500.0) ** float(mass_correlation)
        light_b, heavy_b = light_b * scale, heavy_b * scale
    if not r:
        t1_b, t2_b = rng.beta(5, 3, nb), rng.beta(5, 3, nb)
    mres, mx, my = signal_masses
    mjj_s = rng.normal(mres, signal_mjj_width, ns)
    mjj_s = np.clip(mjj_s, mjj_range[0] + 1e-3, mjj_range[1] - 1e-3)
    heavy_s = rng.normal(mx, 0.05 * mx, ns)
    light_s = rng.normal(my, 0.1 * my, ns)
    t1_s, t2_s = rng.beta(2, 5, ns), rng.beta(2, 5, ns)
    mj2 = np.r_[heavy_b, heavy_s]
    mj1 = np.r_[light_b, light_s]
    lo, hi = np.minimum(mj1, mj2), np.maximum(mj1, mj2)
    df = pd.DataFrame({
        "mjj": np.r_[mjj_b, mjj_s],
        "mj1": lo,
        "mj2": hi,
        "delta_mj": hi - lo,
        "tau21_j1": np.r_[t1_b, t1_s],
        "tau21_j2": np.r_[t2_b, t2_s],
        "label": np.r_[np.zeros(nb, np.int8), np.ones(ns, np.int8)],
    })
    df = df.iloc[rng.permutation(len(df))].reset_index(drop=True)
    df.attrs["excess"] = {"generator": "excess.search.synthetic.toy_events", "n_background": nb, "n_signal": ns,
                          "signal_masses": list(signal_masses), "mass_correlation": float(mass_correlation),
                          "joint_drift": r}
    return df


class FeatureScorer:
    """Fixed score: ``sum(weights * X) `` (no training). Protocol-compatible test double."""

    name = "feature"
    needs_labels = False
    needs_background = False

    def __init__(self, weights=None):
        self.weights = weights

    def fit(self, X, m, *, sr, y=None, X_background=None, m_background=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def score_samples(self, X, m):
        X = np.asarray(X, dtype=float)
        w = np.ones(X.shape[1]) if self.weights is None else np.asarray(self.weights, dtype=float)
        return X @ w


class GaussianSRvsSB:
    """CWoLa-like learned score: ``log N(x; SR) - log N(x; SB)`` with Gaussians fitted on the SR and SB
    training events: diagonal (``covariance="diag"``, default: sees only each feature's own distribution)
    or ``"full"`` (sees correlations too, as a real classifier does). Cheap enough for hundreds of
    pseudo-experiments."""

    name = "gaussian_sr_vs_sb"
    trains_sr_vs_sb = True
    needs_labels = False
    needs_background = False

    def __init__(self, covariance: str = "diag", random_state=None):
        self.covariance = covariance
        self.random_state = random_state

    def __repr__(self):
        return f"GaussianSRvsSB(covariance={self.covariance!r})"

    def fit(self, X, m, *, sr, y=None, X_background=None, m_background=None):
        X = np.asarray(X, dtype=float)
        m = np.asarray(m, dtype=float)
        is_sr = (m >= sr[0]) & (m < sr[1])
        if is_sr.sum() < 2 or (~is_sr).sum() < 2:
            from ..errors import InputError

            raise InputError("GaussianSRvsSB needs at least 2 SR and 2 SB events")
        if self.covariance not in ("diag", "full"):
            from ..errors import ConfigError

            raise ConfigError(f"covariance must be 'diag' or 'full', got {self.covariance!r}")
        self.mean_ = [X[is_sr].mean(0), X[~is_sr].mean(0)]
        self.var_ = [X[is_sr].var(0) + 1e-9, X[~is_sr].var(0) + 1e-9]
        if self.covariance == "full":
            self.chol_ = [np.linalg.cholesky(np.cov(X[s], rowvar=False).reshape(X.shape[1], X.shape[1])
                                             + 1e-9 * np.eye(X.shape[1])) for s in (is_sr, ~is_sr)]
        return self

    def score_samples(self, X, m):
        X = np.asarray(X, dtype=float)

        def logn(i):
            if self.covariance == "full":
                L = self.chol_[i]
                u = np.linalg.solve(L, (X - self.mean_[i]).T)
                return -0.5 * np.sum(u**2, axis=0) - np.sum(np.log(np.diag(L)))
            return -0.5 * np.sum((X - self.mean_[i]) ** 2 / self.var_[i] + np.log(self.var_[i]), axis=1)

        return logn(0) - logn(1)
